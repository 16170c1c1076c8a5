"""Planar poses ``(x, y, yaw)`` to and from geometry_msgs (Pose, Transform, covariance).

A planar pose lies in the x-y plane of its frame (z = 0) and turns about z (REP-103), the
kind :mod:`kestrel_core.mapping` estimates.
"""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Point, Pose, Quaternion, Transform, Vector3
from scipy.spatial.transform import Rotation

__all__ = ["planar_covariance", "planar_from_matrix", "planar_from_pose", "planar_to_pose",
           "planar_to_transform"]

# Rows of x, y and yaw in the (x, y, z, roll, pitch, yaw) covariance of geometry_msgs.
_PLANAR_AXES = [0, 1, 5]


def _yaw_quaternion(yaw: float) -> Quaternion:
    x, y, z, w = (float(v) for v in Rotation.from_euler("z", float(yaw)).as_quat())
    return Quaternion(x=x, y=y, z=z, w=w)


def planar_to_pose(pose: np.ndarray) -> Pose:
    """The ``Pose`` of a (3,) ``(x, y, yaw)``."""
    return Pose(position=Point(x=float(pose[0]), y=float(pose[1]), z=0.0),
                orientation=_yaw_quaternion(pose[2]))


def planar_to_transform(pose: np.ndarray) -> Transform:
    """The ``Transform`` of a (3,) ``(x, y, yaw)``."""
    return Transform(translation=Vector3(x=float(pose[0]), y=float(pose[1]), z=0.0),
                     rotation=_yaw_quaternion(pose[2]))


def planar_from_pose(position: Point | Vector3, orientation: Quaternion) -> np.ndarray:
    """(3,) ``(x, y, yaw)`` of a position and orientation (a Pose's or a Transform's);
    yaw is the heading of the rotated x axis in the x-y plane."""
    rotation = Rotation.from_quat([orientation.x, orientation.y, orientation.z, orientation.w])
    x_axis = rotation.apply([1.0, 0.0, 0.0])
    return np.array([position.x, position.y, np.arctan2(x_axis[1], x_axis[0])])


def planar_from_matrix(matrix: np.ndarray) -> np.ndarray:
    """(3,) ``(x, y, yaw)`` of a (4, 4) transform projected on the x-y plane."""
    return np.array([matrix[0, 3], matrix[1, 3], np.arctan2(matrix[1, 0], matrix[0, 0])])


def planar_covariance(covariance: np.ndarray) -> list[float]:
    """The 36 row-major values of a 6-DoF covariance holding a (3, 3) ``(x, y, yaw)`` one
    (z, roll and pitch: 0, as fixed by the plane)."""
    full = np.zeros((6, 6))
    full[np.ix_(_PLANAR_AXES, _PLANAR_AXES)] = np.asarray(covariance, np.float64).reshape(3, 3)
    return full.ravel().tolist()
