"""Late fusion: a 3D cluster and a 2D mask that see the same object confirm each other.

The cluster points are projected into the camera
(:func:`kestrel_core.fusion.projection.project_points`); every visible point reads the
instance id of the mask image at its rounded pixel. For each cluster ``c`` and mask ``k``
the *overlap* is the share of ``c``'s visible points that land on ``k``. Clusters and masks
are paired one-to-one by maximum total overlap (Hungarian), and a pair is a 3D-confirmed
object when its overlap is at least ``min_overlap`` and the cluster has at least
``min_visible_points`` visible points. The counting is one ``numpy.bincount`` over
``cluster * (K + 1) + id``; there is no loop over points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from kestrel_core.discovery.tracking import assign
from kestrel_core.fusion.projection import project_points
from kestrel_core.geometry.camera import PinholeCamera

__all__ = ["LateFusionConfig", "ConfirmedObject", "cluster_mask_overlap", "confirm_objects"]


@dataclass(frozen=True)
class LateFusionConfig:
    """Settings of :func:`confirm_objects`.

    Attributes:
        min_overlap: share of a cluster's visible points that must fall on the mask.
        min_visible_points: visible points a cluster needs to be judged at all.
    """

    min_overlap: float = 0.5
    min_visible_points: int = 5

    def __post_init__(self) -> None:
        if not 0.0 < self.min_overlap <= 1.0:
            raise ValueError(f"min_overlap must be in (0, 1], got {self.min_overlap}")
        if self.min_visible_points < 1:
            raise ValueError(f"min_visible_points must be >= 1, got {self.min_visible_points}")


@dataclass(frozen=True)
class ConfirmedObject:
    """A cluster confirmed by a mask.

    Attributes:
        cluster: cluster id (``0..C-1``).
        instance: mask id in the instance image (``1..K``).
        overlap: share of the cluster's visible points on the mask.
        visible_points: number of the cluster's points inside the image.
    """

    cluster: int
    instance: int
    overlap: float
    visible_points: int


def cluster_mask_overlap(points: np.ndarray, labels: np.ndarray, instances: np.ndarray,
                         T_cam_lidar: np.ndarray, camera: PinholeCamera) -> tuple[np.ndarray, np.ndarray]:
    """Overlap of every cluster with every mask.

    Args:
        points: ``(N, 3)`` points in the LiDAR frame (NaN rows allowed, never visible).
        labels: ``(N,)`` cluster ids ``0..C-1``, -1 for none.
        instances: ``(H, W)`` int instance image of the camera (0 background, ``1..K``).
        T_cam_lidar: ``(4, 4)`` LiDAR -> camera optical frame.
        camera: the camera the instance image belongs to (its size must match).

    Returns:
        ``(overlap (C, K) float64, visible (C,) int64)``.
    """
    labels = np.asarray(labels)
    if instances.shape != (camera.height, camera.width):
        raise ValueError(f"instance image {instances.shape} does not match the camera "
                         f"{(camera.height, camera.width)}")
    clusters = int(labels.max()) + 1 if labels.size else 0
    objects = int(instances.max()) if instances.size else 0
    finite = np.isfinite(points).all(axis=1) & (labels >= 0)
    projection = project_points(torch.as_tensor(np.where(finite[:, None], points, 0.0)), T_cam_lidar, camera)
    visible = projection.visible.numpy() & finite
    pixels = np.rint(projection.uv.numpy()[visible]).astype(np.int64)
    ids = instances[pixels[:, 1], pixels[:, 0]].astype(np.int64)
    counts = np.bincount(labels[visible] * (objects + 1) + ids,
                         minlength=clusters * (objects + 1)).reshape(clusters, objects + 1)
    seen = counts.sum(axis=1)
    overlap = counts[:, 1:] / np.maximum(seen, 1)[:, None]
    return overlap, seen


def confirm_objects(points: np.ndarray, labels: np.ndarray, instances: np.ndarray,
                    T_cam_lidar: np.ndarray, camera: PinholeCamera,
                    config: LateFusionConfig = LateFusionConfig()) -> list[ConfirmedObject]:
    """3D-confirmed objects: clusters paired with masks (see the module docstring),
    in cluster order."""
    overlap, seen = cluster_mask_overlap(points, labels, instances, T_cam_lidar, camera)
    overlap = np.where((seen >= config.min_visible_points)[:, None], overlap, 0.0)
    pairs = assign(overlap, config.min_overlap)
    return sorted((ConfirmedObject(c, k + 1, float(overlap[c, k]), int(seen[c])) for c, k in pairs),
                  key=lambda o: o.cluster)
