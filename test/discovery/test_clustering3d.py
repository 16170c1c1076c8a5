"""Ground removal, Euclidean clustering and oriented boxes on a simulated LiDAR-like cloud."""

from __future__ import annotations

import numpy as np
import pytest

from kestrel_core.discovery import (
    ClusterConfig,
    GroundConfig,
    box_contains,
    cluster_objects,
    euclidean_clusters,
    fit_box,
    fit_boxes,
    ground_mask,
)

# (centre x, y, size x, y, z, yaw) of the objects standing on the ground.
OBJECTS = [(4.0, 2.0, 1.8, 0.8, 1.5, 0.3), (8.0, -3.0, 0.6, 0.6, 1.8, 0.0),
           (12.0, 4.0, 4.0, 1.7, 1.4, -0.8), (3.0, -6.0, 1.0, 0.5, 0.7, 1.2)]
TILT = (0.02, -0.01)   # ground slope along x and y


def ground_height(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return TILT[0] * x + TILT[1] * y - 1.7


def simulated_cloud(seed: int = 0, nan_points: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points in a z-up sensor frame and their object index (-1 ground, -2 NaN)."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform([-20, -20], [20, 20], size=(6000, 2))
    ground = np.column_stack([xy, ground_height(xy[:, 0], xy[:, 1]) + rng.normal(0, 0.02, len(xy))])
    parts, owners = [ground], [np.full(len(ground), -1)]
    for index, (cx, cy, sx, sy, sz, yaw) in enumerate(OBJECTS):
        local = rng.uniform(-0.5, 0.5, size=(400, 3)) * [sx, sy, sz]
        c, s = np.cos(yaw), np.sin(yaw)
        world = local @ np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])
        base = ground_height(np.array(cx), np.array(cy))
        parts.append(world + [cx, cy, base + sz / 2 + 0.25])
        owners.append(np.full(400, index))
    if nan_points:
        bad = rng.uniform(-5, 5, size=(nan_points, 3))
        bad[:, rng.integers(0, 3)] = np.nan
        parts.append(bad)
        owners.append(np.full(nan_points, -2))
    return np.concatenate(parts), np.concatenate(owners)


@pytest.mark.parametrize("nan_points", [0, 50])
def test_cluster_count_and_membership_are_recovered(nan_points):
    points, owners = simulated_cloud(nan_points=nan_points)
    labels = cluster_objects(points, GroundConfig(distance=0.1), ClusterConfig(radius=0.5, min_points=20))
    assert labels.max() + 1 == len(OBJECTS)
    for index in range(len(OBJECTS)):
        assert len(np.unique(labels[owners == index])) == 1   # each object is one cluster
    assert np.all(labels[owners < 0] == -1)                     # ground and NaN points are in none
    assert np.bincount(labels[labels >= 0]).tolist() == [400] * len(OBJECTS)


def test_ransac_ground_finds_the_tilted_plane():
    points, owners = simulated_cloud()
    ground = ground_mask(points, GroundConfig(distance=0.1))
    assert ground[owners == -1].mean() > 0.99 and not ground[owners >= 0].any()


def test_height_ground_and_size_limits():
    points, owners = simulated_cloud()
    ground = ground_mask(points, GroundConfig(method="height", height=-1.0))
    assert ground[owners == -1].all()
    labels = euclidean_clusters(points, ClusterConfig(radius=0.5, min_points=20, max_points=500), keep=~ground)
    assert labels.max() + 1 == len(OBJECTS)
    sizes = np.bincount(owners[(owners >= 0) & ~ground])   # object points above the cut height
    capped = euclidean_clusters(points, ClusterConfig(radius=0.5, min_points=20, max_points=int(sizes.max()) - 1),
                                keep=~ground)
    assert capped.max() + 1 == len(OBJECTS) - 1                 # only the largest is dropped
    assert not (capped[owners == int(np.argmax(sizes))] >= 0).any()


def test_boxes_enclose_their_points_and_recover_yaw_and_size():
    points, owners = simulated_cloud()
    labels = cluster_objects(points, GroundConfig(distance=0.1), ClusterConfig(radius=0.5, min_points=20))
    boxes = fit_boxes(points, labels)
    for cluster, box in enumerate(boxes):
        members = points[labels == cluster]
        assert box_contains(box, members).all()
        assert not box_contains(box, points[labels == -1][::10]).all()
        cx, cy, sx, sy, sz, yaw = OBJECTS[int(owners[labels == cluster][0])]
        assert box.extents[2] == pytest.approx(sz, rel=0.1)
        if max(sx, sy) / min(sx, sy) > 1.5:                  # PCA yaw is defined only for elongated objects
            assert box.extents[0] == pytest.approx(max(sx, sy), rel=0.1)
            assert box.extents[1] == pytest.approx(min(sx, sy), rel=0.15)
            expected = yaw if sx > sy else yaw + np.pi / 2
            difference = (box.yaw - expected + np.pi / 2) % np.pi - np.pi / 2
            assert abs(difference) < 0.05
    corners = boxes[0].corners()
    assert corners.shape == (8, 3) and box_contains(boxes[0], corners).all()


def test_single_point_box_and_bad_input():
    box = fit_box(np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(box.center, [1, 2, 3]) and np.testing.assert_allclose(box.extents, 0)
    with pytest.raises(ValueError, match="finite"):
        fit_box(np.array([[np.nan, 0, 0]]))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        euclidean_clusters(np.zeros((5, 2)))
    assert (euclidean_clusters(np.full((4, 3), np.nan)) == -1).all()
