"""Upright 3D boxes (:class:`kestrel_core.discovery.OrientedBox3D`) <-> ``vision_msgs/Detection3D``.

A box's pose is its centre and its yaw about ``z`` as the quaternion
``(0, 0, sin(yaw / 2), cos(yaw / 2))``; ``bbox.size`` holds its full extents along its own
axes (x along the yaw direction). Detections carry one hypothesis whose pose is the box
pose too.
"""

from __future__ import annotations

import math

import numpy as np
from geometry_msgs.msg import Pose
from std_msgs.msg import Header
from vision_msgs.msg import Detection3D, ObjectHypothesisWithPose

from kestrel_core.discovery.boxes import OrientedBox3D

__all__ = ["box_pose", "pose_yaw", "box_to_detection3d", "detection3d_to_box"]


def box_pose(box: OrientedBox3D) -> Pose:
    """Pose of a box: its centre and the rotation by its yaw about ``z``."""
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in box.center)
    pose.orientation.z = math.sin(box.yaw / 2.0)
    pose.orientation.w = math.cos(box.yaw / 2.0)
    return pose


def pose_yaw(pose: Pose) -> float:
    """Yaw about ``z`` of an upright pose's quaternion, in ``(-pi, pi]``.

    Raises:
        ValueError: the rotation is not about ``z`` alone (a tilted pose).
    """
    q = pose.orientation
    norm = math.sqrt(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w)
    if norm == 0.0 or math.hypot(q.x, q.y) > 1e-6 * norm:
        raise ValueError(f"pose is not a rotation about z: quaternion ({q.x}, {q.y}, {q.z}, {q.w})")
    return math.atan2(2.0 * q.z * q.w, q.w * q.w - q.z * q.z)


def box_to_detection3d(box: OrientedBox3D, header: Header, detection_id: str, class_id: str,
                       score: float) -> Detection3D:
    """``Detection3D`` of a box with one hypothesis ``(class_id, score)`` at the box pose."""
    out = Detection3D(header=header, id=detection_id)
    out.bbox.center = box_pose(box)
    out.bbox.size.x, out.bbox.size.y, out.bbox.size.z = (float(v) for v in box.extents)
    hypothesis = ObjectHypothesisWithPose()
    hypothesis.hypothesis.class_id = class_id
    hypothesis.hypothesis.score = float(score)
    hypothesis.pose.pose = out.bbox.center
    out.results = [hypothesis]
    return out


def detection3d_to_box(detection: Detection3D) -> OrientedBox3D:
    """The upright box of a ``Detection3D`` (its ``bbox``)."""
    center = detection.bbox.center.position
    size = detection.bbox.size
    return OrientedBox3D(np.array([center.x, center.y, center.z]), np.array([size.x, size.y, size.z]),
                         pose_yaw(detection.bbox.center))
