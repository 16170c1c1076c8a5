"""OrientedBox3D <-> vision_msgs/Detection3D: round trips, the quaternion convention, tilted poses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from geometry_msgs.msg import Pose
from scipy.spatial.transform import Rotation
from std_msgs.msg import Header

from kestrel_core.discovery.boxes import OrientedBox3D, fit_box
from kestrel_ros.conversions.detections3d import box_pose, box_to_detection3d, detection3d_to_box, pose_yaw


def corners_of_message(detection) -> np.ndarray:
    """(8, 3) corners from the message alone (pose quaternion and size), via scipy."""
    pose, size = detection.bbox.center, detection.bbox.size
    q = pose.orientation
    rotation = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
    signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1], indexing="ij")).reshape(3, -1).T
    half = signs * np.array([size.x, size.y, size.z]) / 2.0
    return np.array([pose.position.x, pose.position.y, pose.position.z]) + half @ rotation.T


@pytest.mark.parametrize("yaw", [0.0, 0.4, -1.2, math.pi / 2])
def test_round_trip_and_corners(yaw):
    box = OrientedBox3D(np.array([4.0, -1.5, 0.75]), np.array([2.0, 0.8, 1.5]), yaw)
    header = Header(frame_id="lidar")
    detection = box_to_detection3d(box, header, "7", "object", 0.8)

    assert detection.id == "7" and detection.header.frame_id == "lidar"
    assert detection.results[0].hypothesis.class_id == "object"
    assert detection.results[0].hypothesis.score == pytest.approx(0.8)
    assert detection.results[0].pose.pose == detection.bbox.center
    # The message describes the same solid: its corners (read as any ROS user would) are the box's.
    np.testing.assert_allclose(np.sort(corners_of_message(detection), axis=0), np.sort(box.corners(), axis=0),
                               atol=1e-9)
    back = detection3d_to_box(detection)
    np.testing.assert_allclose(back.center, box.center)
    np.testing.assert_allclose(back.extents, box.extents)
    assert back.yaw == pytest.approx(yaw)


def test_a_fitted_box_survives_the_message():
    rng = np.random.default_rng(3)
    local = rng.uniform(-0.5, 0.5, (500, 3)) * np.array([3.0, 1.0, 2.0])
    c, s = math.cos(0.7), math.sin(0.7)
    points = local @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]).T + np.array([10.0, 2.0, 1.0])
    box = fit_box(points)
    back = detection3d_to_box(box_to_detection3d(box, Header(), "1", "object", 0.5))
    np.testing.assert_allclose(back.corners(), box.corners(), atol=1e-9)


def test_pose_yaw_normalises_the_quaternion_and_rejects_tilts():
    pose = box_pose(OrientedBox3D(np.zeros(3), np.ones(3), 1.0))
    pose.orientation.z *= 3.0
    pose.orientation.w *= 3.0
    assert pose_yaw(pose) == pytest.approx(1.0)
    tilted = Pose()
    tilted.orientation.x, tilted.orientation.w = math.sin(0.2), math.cos(0.2)
    with pytest.raises(ValueError, match="not a rotation about z"):
        pose_yaw(tilted)
    zero = Pose()
    zero.orientation.w = 0.0
    with pytest.raises(ValueError):
        pose_yaw(zero)
