"""Planar rigid transforms ``(x, y, theta)`` as numpy arrays, vectorized over leading axes.

A pose maps body coordinates to world coordinates: ``p_world = R(theta) p_body + (x, y)``.
"""

from __future__ import annotations

import numpy as np


def wrap_angle(angle: np.ndarray | float) -> np.ndarray:
    """Angles wrapped into ``[-pi, pi)``, same shape."""
    return (np.asarray(angle) + np.pi) % (2.0 * np.pi) - np.pi


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a * b`` for (..., 3) poses: b expressed in a's frame, returned in a's parent frame."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    cos, sin = np.cos(a[..., 2]), np.sin(a[..., 2])
    x = a[..., 0] + cos * b[..., 0] - sin * b[..., 1]
    y = a[..., 1] + sin * b[..., 0] + cos * b[..., 1]
    return np.stack([x, y, wrap_angle(a[..., 2] + b[..., 2])], axis=-1)


def inverse(a: np.ndarray) -> np.ndarray:
    """``a^-1`` for (..., 3) poses."""
    a = np.asarray(a, dtype=np.float64)
    cos, sin = np.cos(a[..., 2]), np.sin(a[..., 2])
    x = -cos * a[..., 0] - sin * a[..., 1]
    y = sin * a[..., 0] - cos * a[..., 1]
    return np.stack([x, y, wrap_angle(-a[..., 2])], axis=-1)


def between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a^-1 * b`` for (..., 3) poses: b seen from a."""
    return compose(inverse(a), b)


def transform_points(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 2) body points to (N, 2) world points with one (3,) pose."""
    cos, sin = np.cos(pose[2]), np.sin(pose[2])
    rotation = np.array([[cos, -sin], [sin, cos]])
    return np.asarray(points, dtype=np.float64) @ rotation.T + np.asarray(pose[:2])
