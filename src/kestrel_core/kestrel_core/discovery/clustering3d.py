"""Objects in a point cloud without labels: ground removal, then Euclidean clustering.

Ground. ``method="ransac"`` fits a plane by RANSAC with every hypothesis scored at once
(``(T, 3)`` normals against at most 8192 sampled points in one product), keeps only planes whose
normal is within ``max_tilt_deg`` of the up axis, refits the best one to its inliers by
least squares (SVD) and removes points within ``distance`` of it. ``method="height"``
removes points whose up coordinate is below ``height`` (for a sensor whose frame has a
known ground height).

Clusters. Two points are linked when they are closer than ``radius``
(``scipy.spatial.cKDTree.query_pairs``); the clusters are the connected components of that
sparse graph (``scipy.sparse.csgraph.connected_components``), i.e. single-linkage
Euclidean clustering as in PCL's ``EuclideanClusterExtraction``. Clusters with fewer than
``min_points`` or more than ``max_points`` points are dropped. There is no Python loop over
points; NaN or infinite points are never clustered (label -1).

Dense clouds. The number of linked pairs grows with the square of the density (a 64-beam scan
of an object 3 m away has millions of pairs within 0.5 m). With ``voxel_size > 0`` the
links are found between the centroids of the occupied voxels instead, and every point takes
its voxel's cluster: two points are then linked when their voxel centroids are closer than
``radius`` (an approximation within about one voxel diagonal), while the size limits still
count points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
import scipy.spatial

__all__ = ["GroundConfig", "ClusterConfig", "ground_mask", "euclidean_clusters", "cluster_objects"]

_GROUND_METHODS = ("ransac", "height", "none")
# RANSAC hypotheses are scored on a random subset of at most this many points.
_SCORED_POINTS = 8192


@dataclass(frozen=True)
class GroundConfig:
    """Ground removal settings.

    Attributes:
        method: ``"ransac"``, ``"height"`` or ``"none"``.
        distance: plane inlier distance in metres (RANSAC).
        iterations: RANSAC hypotheses (all scored in one batch).
        max_tilt_deg: largest angle between the plane normal and the up axis (RANSAC).
        height: up coordinate at or below which points are ground (``"height"``).
        up_axis: index of the up axis in the points' frame (2 for REP-103 ``z`` up).
        seed: random seed of the hypothesis sampling (results are reproducible).
    """

    method: str = "ransac"
    distance: float = 0.15
    iterations: int = 200
    max_tilt_deg: float = 15.0
    height: float = 0.0
    up_axis: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in _GROUND_METHODS:
            raise ValueError(f"method must be one of {_GROUND_METHODS}, got {self.method!r}")
        if self.distance <= 0 or self.iterations < 1:
            raise ValueError("distance must be > 0 and iterations >= 1")
        if not 0.0 <= self.max_tilt_deg <= 90.0:
            raise ValueError(f"max_tilt_deg must be in [0, 90], got {self.max_tilt_deg}")
        if self.up_axis not in (0, 1, 2):
            raise ValueError(f"up_axis must be 0, 1 or 2, got {self.up_axis}")


@dataclass(frozen=True)
class ClusterConfig:
    """Euclidean clustering settings.

    Attributes:
        radius: link distance in metres.
        min_points, max_points: accepted cluster sizes (inclusive).
        voxel_size: edge in metres of the voxels whose centroids are linked instead of the
            points (0: exact point links).
    """

    radius: float = 0.5
    min_points: int = 10
    max_points: int = 100_000
    voxel_size: float = 0.0

    def __post_init__(self) -> None:
        if self.radius <= 0:
            raise ValueError(f"radius must be > 0, got {self.radius}")
        if not 1 <= self.min_points <= self.max_points:
            raise ValueError(f"need 1 <= min_points <= max_points, got {self.min_points}, {self.max_points}")
        if self.voxel_size < 0:
            raise ValueError(f"voxel_size must be >= 0, got {self.voxel_size}")


def _check_points(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be (N, 3), got {points.shape}")
    return points.astype(np.float64, copy=False)


def _ransac_plane(points: np.ndarray, config: GroundConfig) -> tuple[np.ndarray, float] | None:
    """Best plane ``n . x = d`` (unit ``n``) of finite ``(N, 3)`` points, or None."""
    rng = np.random.default_rng(config.seed)
    samples = points[rng.integers(0, len(points), size=(config.iterations, 3))]   # (T, 3, 3)
    normals = np.cross(samples[:, 1] - samples[:, 0], samples[:, 2] - samples[:, 0])
    norms = np.linalg.norm(normals, axis=1)
    valid = norms > 1e-9
    normals = normals[valid] / norms[valid, None]
    offsets = np.einsum("tc,tc->t", normals, samples[valid, 0])
    upright = np.abs(normals[:, config.up_axis]) >= np.cos(np.deg2rad(config.max_tilt_deg))
    normals, offsets = normals[upright], offsets[upright]
    if len(normals) == 0:
        return None
    scored = points if len(points) <= _SCORED_POINTS else points[rng.choice(len(points), _SCORED_POINTS, replace=False)]
    inliers = np.abs(scored @ normals.T - offsets) <= config.distance              # (S, T)
    best = int(np.argmax(inliers.sum(axis=0)))
    support = points[np.abs(points @ normals[best] - offsets[best]) <= config.distance]
    if len(support) < 3:
        return None
    centroid = support.mean(axis=0)
    normal = np.linalg.svd(support - centroid, full_matrices=False)[2][-1]
    if abs(normal[config.up_axis]) < np.cos(np.deg2rad(config.max_tilt_deg)):
        normal = normals[best]
    return normal, float(normal @ centroid)


def _link_nodes(points: np.ndarray, voxel_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes of the link graph of finite ``(n, 3)`` points and each point's node: the points
    themselves, or the centroids ``(V, 3)`` of their voxels when ``voxel_size > 0``."""
    if voxel_size <= 0:
        return points, np.arange(len(points))
    _, node, counts = np.unique(np.floor(points / voxel_size).astype(np.int64), axis=0,
                                return_inverse=True, return_counts=True)
    node = node.reshape(-1)
    centroids = np.stack([np.bincount(node, weights=points[:, axis]) for axis in range(3)], axis=1)
    return centroids / counts[:, None], node


def ground_mask(points: np.ndarray, config: GroundConfig = GroundConfig()) -> np.ndarray:
    """``(N,)`` bool: the ground points of ``(N, 3)`` points (never NaN points)."""
    points = _check_points(points)
    finite = np.isfinite(points).all(axis=1)
    ground = np.zeros(len(points), bool)
    if config.method == "none" or finite.sum() < 3:
        return ground
    valid = points[finite]
    if config.method == "height":
        ground[finite] = valid[:, config.up_axis] <= config.height
        return ground
    plane = _ransac_plane(valid, config)
    if plane is not None:
        normal, offset = plane
        ground[finite] = np.abs(valid @ normal - offset) <= config.distance
    return ground


def euclidean_clusters(points: np.ndarray, config: ClusterConfig = ClusterConfig(),
                       keep: np.ndarray | None = None) -> np.ndarray:
    """Cluster labels of ``(N, 3)`` points.

    Args:
        points: ``(N, 3)`` points; NaN/inf rows are ignored.
        config: link radius and size limits.
        keep: optional ``(N,)`` bool of the points to cluster (e.g. not ground).

    Returns:
        ``(N,)`` int64: ``0..C-1`` cluster ids, ordered by decreasing size, ``-1`` for
        points in no accepted cluster.
    """
    points = _check_points(points)
    usable = np.isfinite(points).all(axis=1)
    if keep is not None:
        usable &= np.asarray(keep, bool)
    labels = np.full(len(points), -1, np.int64)
    index = np.flatnonzero(usable)
    if index.size == 0:
        return labels
    nodes, node_of_point = _link_nodes(points[index], config.voxel_size)
    pairs = scipy.spatial.cKDTree(nodes).query_pairs(config.radius, output_type="ndarray")
    graph = scipy.sparse.coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])),
                                    shape=(len(nodes), len(nodes)))
    _, node_component = scipy.sparse.csgraph.connected_components(graph, directed=False)
    component = node_component[node_of_point]
    sizes = np.bincount(component)
    accepted = (sizes >= config.min_points) & (sizes <= config.max_points)
    order = np.argsort(-sizes, kind="stable")
    order = order[accepted[order]]
    rank = np.full(sizes.size, -1, np.int64)
    rank[order] = np.arange(order.size)
    labels[index] = rank[component]
    return labels


def cluster_objects(points: np.ndarray, ground: GroundConfig = GroundConfig(),
                    clusters: ClusterConfig = ClusterConfig()) -> np.ndarray:
    """Ground removal then Euclidean clustering: ``(N,)`` int64 labels, -1 for ground,
    noise and NaN points."""
    return euclidean_clusters(points, clusters, keep=~ground_mask(points, ground))
