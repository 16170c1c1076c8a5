"""Oriented 3D boxes around point clusters, and their similarity for temporal tracking.

A box is upright (rotation about the up axis ``z`` only, as in vision_msgs and the KITTI
convention): ``yaw`` is the direction of the first principal component of the cluster's
``x, y`` coordinates, the extents are the ranges of the points along that axis, its normal
in the ground plane and ``z``, and the centre is the middle of those ranges. So every point
of the cluster lies inside (or on) its box.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kestrel_core.discovery.tracking import Tracker, TrackerConfig

__all__ = ["yaw_rotation", "OrientedBox3D", "fit_box", "fit_boxes", "box_contains", "center_similarity",
           "BoxTracker"]


def yaw_rotation(yaw: float) -> np.ndarray:
    """``(3, 3)`` rotation by ``yaw`` about ``z``."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class OrientedBox3D:
    """An upright box.

    Attributes:
        center: ``(3,)`` metres.
        extents: ``(3,)`` full lengths along the box's own x (yaw direction), y and z.
        yaw: rotation about ``z`` in radians, in ``(-pi/2, pi/2]``.
    """

    center: np.ndarray
    extents: np.ndarray
    yaw: float

    def rotation(self) -> np.ndarray:
        """``(3, 3)`` box-to-frame rotation."""
        return yaw_rotation(self.yaw)

    def corners(self) -> np.ndarray:
        """``(8, 3)`` corner coordinates."""
        signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1], indexing="ij")).reshape(3, -1).T
        return self.center + (signs * self.extents / 2.0) @ self.rotation().T


def fit_box(points: np.ndarray) -> OrientedBox3D:
    """Smallest upright box along the principal ``x, y`` axis of ``(M, 3)`` finite points."""
    points = np.asarray(points, np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0 or not np.isfinite(points).all():
        raise ValueError(f"need (M, 3) finite points with M >= 1, got {points.shape}")
    xy = points[:, :2] - points[:, :2].mean(axis=0)
    if len(points) >= 2 and np.ptp(xy, axis=0).max() > 0:
        axis = np.linalg.eigh(xy.T @ xy)[1][:, -1]
        yaw = float(np.arctan2(axis[1], axis[0]))
    else:
        yaw = 0.0
    yaw = yaw - np.pi if yaw > np.pi / 2 else (yaw + np.pi if yaw <= -np.pi / 2 else yaw)
    rotation = yaw_rotation(yaw)
    local = points @ rotation  # frame -> box axes
    low, high = local.min(axis=0), local.max(axis=0)
    center = rotation @ ((low + high) / 2.0)
    return OrientedBox3D(center, high - low, yaw)


def fit_boxes(points: np.ndarray, labels: np.ndarray) -> list[OrientedBox3D]:
    """One box per cluster id ``0..C-1`` of ``labels (N,)`` (-1 ignored), in id order."""
    labels = np.asarray(labels)
    count = int(labels.max()) + 1 if labels.size else 0
    return [fit_box(points[labels == cluster]) for cluster in range(count)]


def box_contains(box: OrientedBox3D, points: np.ndarray, tolerance: float = 1e-6) -> np.ndarray:
    """``(M,)`` bool: which of ``(M, 3)`` points lie inside the box (with a tolerance)."""
    local = (np.asarray(points, np.float64) - box.center) @ box.rotation()
    return (np.abs(local) <= box.extents / 2.0 + tolerance).all(axis=1)


def center_similarity(tracks: Sequence[OrientedBox3D], observations: Sequence[OrientedBox3D],
                      max_distance: float) -> np.ndarray:
    """``(T, K)`` ``max(0, 1 - |c_t - c_k| / max_distance)`` of box centres."""
    a = np.stack([b.center for b in tracks])
    b = np.stack([o.center for o in observations])
    distance = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    return np.clip(1.0 - distance / max_distance, 0.0, 1.0)


class BoxTracker(Tracker[OrientedBox3D]):
    """Temporal filter of 3D boxes: a :class:`~kestrel_core.discovery.tracking.Tracker` on
    :func:`center_similarity`; only boxes matched in ``config.persistence`` frames are
    published, so clusters that appear in single scans (noise, passing clutter) are dropped.

    Args:
        config: matching and persistence settings (``iou_weight`` is unused here).
        max_distance: centre distance in metres at which the similarity reaches 0.
    """

    def __init__(self, config: TrackerConfig = TrackerConfig(), max_distance: float = 1.0) -> None:
        if max_distance <= 0:
            raise ValueError(f"max_distance must be > 0, got {max_distance}")
        super().__init__(config, lambda tracks, obs: center_similarity(tracks, obs, max_distance))
