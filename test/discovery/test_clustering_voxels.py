"""Euclidean clustering through voxel centroids (``ClusterConfig.voxel_size``) on dense clouds."""

from __future__ import annotations

import numpy as np
import pytest

from kestrel_core.discovery import ClusterConfig, euclidean_clusters


def dense_cloud(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three dense blobs 3 m apart plus NaN rows, and each point's blob (-1 for NaN)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 3.0, 1.0]])
    sizes = (3000, 1500, 600)
    parts = [c + rng.uniform(-0.5, 0.5, (n, 3)) for c, n in zip(centres, sizes)]   # 1 m cubes
    nan = np.full((40, 3), np.nan)
    owner = np.concatenate([np.full(n, k) for k, n in enumerate(sizes)] + [np.full(len(nan), -1)])
    return np.concatenate(parts + [nan]), owner


@pytest.mark.parametrize("voxel_size", [0.05, 0.1, 0.2])
def test_voxel_links_give_the_exact_clusters_of_separated_objects(voxel_size):
    points, owner = dense_cloud()
    exact = euclidean_clusters(points, ClusterConfig(radius=0.5, min_points=10))
    fast = euclidean_clusters(points, ClusterConfig(radius=0.5, min_points=10, voxel_size=voxel_size))
    np.testing.assert_array_equal(fast, exact)
    np.testing.assert_array_equal(fast, owner)   # blobs by decreasing size: ids 0, 1, 2; NaN -1


def test_size_limits_count_points_not_voxels():
    rng = np.random.default_rng(1)
    tight = rng.uniform(0.0, 0.01, (30, 3))                  # 30 points in one 0.1 m voxel
    lone = np.array([[5.0, 5.0, 5.0]])
    labels = euclidean_clusters(np.concatenate([tight, lone]),
                                ClusterConfig(radius=0.5, min_points=20, max_points=30, voxel_size=0.1))
    np.testing.assert_array_equal(labels, [0] * 30 + [-1])
    capped = euclidean_clusters(tight, ClusterConfig(radius=0.5, min_points=1, max_points=29, voxel_size=0.1))
    assert (capped == -1).all()


def test_keep_mask_and_invalid_voxel_size():
    points, owner = dense_cloud()
    labels = euclidean_clusters(points, ClusterConfig(voxel_size=0.1), keep=owner != 0)
    assert (labels[owner == 0] == -1).all()
    np.testing.assert_array_equal(labels[owner == 1], 0)
    with pytest.raises(ValueError, match="voxel_size"):
        ClusterConfig(voxel_size=-0.1)
