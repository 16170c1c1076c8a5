"""``tf2_ros`` when it is installed, else Kestrel's stand-in with the same interface.

Exports ``Buffer``, ``TransformListener``, ``TransformBroadcaster``,
``StaticTransformBroadcaster``, the lookup errors (``TransformException``,
``LookupException``, ``ConnectivityException``, ``ExtrapolationException``) and two helpers
that work with either: :func:`transform_to_matrix` and :func:`matrix_to_transform`.
"""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Transform, TransformStamped
from scipy.spatial.transform import Rotation

try:
    from tf2_ros import (
        Buffer,
        ConnectivityException,
        ExtrapolationException,
        LookupException,
        StaticTransformBroadcaster,
        TransformBroadcaster,
        TransformException,
        TransformListener,
    )

    USING_STAND_IN = False
except ImportError:  # the PyPI ROS wheels do not ship tf2_ros
    from kestrel_ros.compat.tf_buffer import (
        Buffer,
        ConnectivityException,
        ExtrapolationException,
        LookupException,
        TransformException,
    )
    from kestrel_ros.compat.tf_stand_in import (
        StaticTransformBroadcaster,
        TransformBroadcaster,
        TransformListener,
    )

    USING_STAND_IN = True


def transform_to_matrix(transform: Transform | TransformStamped) -> np.ndarray:
    """The ``(4, 4)`` float64 homogeneous matrix of a ``Transform`` or ``TransformStamped``.

    For a lookup ``target <- source`` it maps homogeneous source points into the target frame.
    """
    if isinstance(transform, TransformStamped):
        transform = transform.transform
    t, q = transform.translation, transform.rotation
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
    matrix[:3, 3] = (t.x, t.y, t.z)
    return matrix


def matrix_to_transform(matrix: np.ndarray) -> Transform:
    """The ``Transform`` of a ``(4, 4)`` rigid homogeneous matrix (rotation part orthonormal)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
        raise ValueError(f"expected a finite (4, 4) matrix, got shape {matrix.shape}")
    rotation = matrix[:3, :3]
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-6) or np.linalg.det(rotation) < 0:
        raise ValueError("the rotation part of the matrix is not a proper rotation")
    transform = Transform()
    transform.translation.x, transform.translation.y, transform.translation.z = (
        float(v) for v in matrix[:3, 3]
    )
    qx, qy, qz, qw = (float(v) for v in Rotation.from_matrix(rotation).as_quat())
    transform.rotation.x, transform.rotation.y, transform.rotation.z, transform.rotation.w = qx, qy, qz, qw
    return transform


__all__ = [
    "Buffer",
    "ConnectivityException",
    "ExtrapolationException",
    "LookupException",
    "StaticTransformBroadcaster",
    "TransformBroadcaster",
    "TransformException",
    "TransformListener",
    "USING_STAND_IN",
    "matrix_to_transform",
    "transform_to_matrix",
]
