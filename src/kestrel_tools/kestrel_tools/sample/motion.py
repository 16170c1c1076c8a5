"""Transforms and poses of the sample bag.

- ``/tf_static`` (once, at the start): ``base_link -> lidar -> camera_left_optical ->
  camera_right_optical`` and ``base_link -> oakd_left_optical -> oakd_right_optical`` (and the
  mapping car's ``car/base_link -> car/scan``, see :mod:`kestrel_tools.sample.mapping`).
- ``/ground_truth/pose``: the real TUM RGB-D fr1_xyz motion-capture trajectory (100 Hz) in
  ``world``, its first pose moved to the bag start.
- ``/tf``: ``odom -> base_link`` at the same instants, an odometry made from the ground truth
  with a known error: positions relative to the start scaled by ``odom_scale`` and the whole
  pose turned about the world z axis by ``odom_yaw_drift_deg_s * t`` (odometry drifts; REP-105).
"""

from __future__ import annotations

import numpy as np
from rosbags.typesys.store import Typestore
from scipy.spatial.transform import Rotation

from kestrel_core.fusion import R_BODY_FROM_OPTICAL
from kestrel_tools.sample import messages, topics
from kestrel_tools.sample.records import SampleMessage
from kestrel_tools.trajectory import Trajectory

LIDAR_ON_BASE = (0.0, 0.0, 0.3)
OAKD_ON_BASE = (0.1, 0.0, 0.2)


def translation(vector: tuple[float, float, float],
                rotation: np.ndarray | None = None) -> np.ndarray:
    """(4, 4) rigid transform with the given translation and (3, 3) rotation."""
    matrix = np.eye(4)
    matrix[:3, 3] = vector
    if rotation is not None:
        matrix[:3, :3] = rotation
    return matrix


def static_transforms(store: Typestore, stamp_ns: int, lidar_from_camera: np.ndarray,
                      rigs: list[tuple[str, str, float]],
                      extra: tuple[object, ...] = ()) -> SampleMessage:
    """``/tf_static``: the LiDAR on the base, the Motorcycle rig under the LiDAR, the OAK-D rig,
    then ``extra``, all in one message (a late subscriber gets them all).

    Args:
        lidar_from_camera: (4, 4) pose of the Motorcycle left optical frame in the LiDAR frame.
        rigs: (left frame, right frame, baseline m) per stereo rig, Motorcycle first.
        extra: further TransformStamped messages (the mapping scanner's mount).
    """
    (cam_left, cam_right, cam_baseline), *others = rigs
    transforms = [
        messages.transform_stamped(store, stamp_ns, topics.BASE_FRAME, topics.LIDAR_FRAME,
                                   translation(LIDAR_ON_BASE)),
        messages.transform_stamped(store, stamp_ns, topics.LIDAR_FRAME, cam_left,
                                   lidar_from_camera),
        messages.transform_stamped(store, stamp_ns, cam_left, cam_right,
                                   translation((cam_baseline, 0.0, 0.0))),
    ]
    for left, right, baseline in others:
        transforms += [
            messages.transform_stamped(store, stamp_ns, topics.BASE_FRAME, left,
                                       translation(OAKD_ON_BASE, R_BODY_FROM_OPTICAL)),
            messages.transform_stamped(store, stamp_ns, left, right,
                                       translation((baseline, 0.0, 0.0))),
        ]
    transforms += extra
    return SampleMessage(topics.TF_STATIC, stamp_ns, messages.tf_message(store, transforms))


def drifting_odometry(truth: Trajectory, scale: float, yaw_deg_per_s: float) -> Trajectory:
    """The ground truth seen by a drifting odometry that starts at the identity (odom frame).

    ``p_odom(t) = Rz(w t) s R0^T (p(t) - p0)`` and ``R_odom(t) = Rz(w t) R0^T R(t)``, where
    ``(R0, p0)`` is the first pose and ``t`` the time since it.
    """
    elapsed = truth.times - truth.times[0]
    first_inverse = truth.rotations[0].inv()
    drift = Rotation.from_euler("z", (yaw_deg_per_s * elapsed)[:, None], degrees=True)
    relative = first_inverse.apply(truth.positions - truth.positions[0])
    positions = drift.apply(scale * relative)
    rotations = drift * first_inverse * truth.rotations
    return Trajectory(truth.times, positions, rotations.as_quat())


def retimed(trajectory: Trajectory, start_ns: int, end_ns: int) -> tuple[np.ndarray, Trajectory]:
    """Poses whose time since the first pose fits in ``[start_ns, end_ns]``, and their stamps."""
    elapsed_ns = np.round((trajectory.times - trajectory.times[0]) * 1e9).astype(np.int64)
    keep = np.flatnonzero(elapsed_ns <= end_ns - start_ns)
    return start_ns + elapsed_ns[keep], trajectory.take(keep)


def motion_messages(store: Typestore, truth: Trajectory, start_ns: int, end_ns: int,
                    scale: float, yaw_deg_per_s: float) -> list[SampleMessage]:
    """``/ground_truth/pose`` and ``/tf`` (odom -> base_link) over ``[start_ns, end_ns]``."""
    stamps, kept = retimed(truth, start_ns, end_ns)
    odometry = drifting_odometry(kept, scale, yaw_deg_per_s)
    out = []
    for stamp, true_pose, odom_pose in zip(stamps.tolist(), kept.matrices(), odometry.matrices()):
        out.append(SampleMessage(topics.GT_POSE, stamp, messages.pose_stamped(
            store, stamp, topics.WORLD_FRAME, true_pose)))
        out.append(SampleMessage(topics.TF, stamp, messages.tf_message(store, [
            messages.transform_stamped(store, stamp, topics.ODOM_FRAME, topics.BASE_FRAME,
                                       odom_pose)])))
    return out
