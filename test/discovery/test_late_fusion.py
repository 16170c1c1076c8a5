"""Late fusion of 3D clusters and 2D masks through the camera projection."""

from __future__ import annotations

import numpy as np
import pytest

from kestrel_core.discovery import LateFusionConfig, confirm_objects
from kestrel_core.fusion.simulated_lidar import default_T_lidar_cam
from kestrel_core.geometry.camera import PinholeCamera

WIDTH, HEIGHT, F = 320, 240, 200.0
CAMERA = PinholeCamera(WIDTH, HEIGHT, np.array([[F, 0, 160.0], [0, F, 120.0], [0, 0, 1]]))
T_CAM_LIDAR = np.linalg.inv(default_T_lidar_cam(0.0))   # LiDAR axes x forward, y left, z up


def block(center, size, count, rng) -> np.ndarray:
    return np.asarray(center) + rng.uniform(-0.5, 0.5, (count, 3)) * size


def pixel_box(points: np.ndarray, margin: int = 2) -> tuple[slice, slice]:
    """Rows and columns covered by points in the LiDAR frame, by the pinhole formula."""
    u = F * -points[:, 1] / points[:, 0] + 160.0
    v = F * -points[:, 2] / points[:, 0] + 120.0
    return (slice(int(v.min()) - margin, int(np.ceil(v.max())) + margin + 1),
            slice(int(u.min()) - margin, int(np.ceil(u.max())) + margin + 1))


def test_clusters_are_confirmed_by_the_masks_they_project_into():
    rng = np.random.default_rng(0)
    left = block((6.0, 1.5, 0.0), (0.8, 0.8, 1.2), 300, rng)
    right = block((8.0, -2.0, 0.3), (1.0, 1.0, 0.8), 300, rng)
    behind = block((-5.0, 0.0, 0.0), (1.0, 1.0, 1.0), 300, rng)
    points = np.concatenate([left, right, behind, np.full((20, 3), np.nan)])
    labels = np.repeat([0, 1, 2, -1], [300, 300, 300, 20])
    instances = np.zeros((HEIGHT, WIDTH), np.int32)
    instances[pixel_box(right)] = 1                     # mask ids in another order than clusters
    instances[pixel_box(left)] = 2
    instances[5:30, 5:30] = 3                           # a mask no cluster falls into
    confirmed = confirm_objects(points, labels, instances, T_CAM_LIDAR, CAMERA)
    assert [(c.cluster, c.instance) for c in confirmed] == [(0, 2), (1, 1)]
    assert all(c.overlap == pytest.approx(1.0) and c.visible_points == 300 for c in confirmed)


def test_a_cluster_mostly_outside_its_mask_is_not_confirmed():
    rng = np.random.default_rng(1)
    cluster = block((6.0, 0.0, 0.0), (0.5, 2.0, 0.5), 400, rng)
    instances = np.zeros((HEIGHT, WIDTH), np.int32)
    rows, cols = pixel_box(cluster)
    instances[rows, cols.start: cols.start + (cols.stop - cols.start) // 4] = 1   # a quarter of it
    labels = np.zeros(len(cluster), np.int64)
    assert confirm_objects(cluster, labels, instances, T_CAM_LIDAR, CAMERA, LateFusionConfig(min_overlap=0.5)) == []
    loose = confirm_objects(cluster, labels, instances, T_CAM_LIDAR, CAMERA, LateFusionConfig(min_overlap=0.2))
    assert len(loose) == 1 and 0.2 < loose[0].overlap < 0.4


def test_instance_image_must_match_the_camera():
    with pytest.raises(ValueError, match="does not match the camera"):
        confirm_objects(np.zeros((1, 3)), np.zeros(1, np.int64), np.zeros((10, 10), np.int32), T_CAM_LIDAR, CAMERA)
