"""Topological place graph: place nodes, odometry and revisit edges, loop-closure correction.

A node is added when the robot has moved ``node_distance`` metres or turned ``node_turn``
radians since the last one. It keeps its pose, a global embedding (an SSL embedding when
the caller has one, else ``grid_descriptor``) and its observation signal. A revisit
candidate is an older node, near enough given the drift, whose embedding matches; it is
accepted only if correlating the two observations (coarse then fine ``localize``) gives a
good score, and the match becomes an edge for the SE(2) pose graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from kestrel_core.mapping import se2
from kestrel_core.mapping.egocentric import FREE, HITS
from kestrel_core.mapping.localization import LocalizationConfig, localize
from kestrel_core.mapping.posegraph import optimize_pose_graph

ODOMETRY, REVISIT = 0, 1


@dataclass(frozen=True)
class TopologicalConfig:
    """Place creation and revisit detection.

    Attributes:
        node_distance: metres travelled before a new place node.
        node_turn: radians turned before a new place node.
        recent_nodes: the last this many nodes are never revisit candidates.
        search_radius: metres; candidates lie this close to the current estimate.
        min_similarity: cosine similarity of embeddings for a candidate.
        candidates: how many best-matching candidates are verified.
        coarse: verification search (on grids pooled 2x) for the relative pose.
        fine: refinement search at full resolution.
        min_verify_score: normalised correlation needed to accept a revisit.
        odometry_sigma, revisit_sigma: (x, y, theta) standard deviations (m, m, rad) of
            odometry and revisit edges.
    """

    node_distance: float = 8.0
    node_turn: float = float(np.radians(30.0))
    recent_nodes: int = 15
    search_radius: float = 60.0
    min_similarity: float = 0.7
    candidates: int = 3
    coarse: LocalizationConfig = field(default_factory=lambda: LocalizationConfig(
        search_radius_cells=20, rotation_bins=13, rotation_step=float(np.radians(2.0)),
        min_score=0.0))
    fine: LocalizationConfig = field(default_factory=lambda: LocalizationConfig(
        search_radius_cells=3, rotation_bins=5, rotation_step=float(np.radians(1.0)),
        min_score=0.0))
    min_verify_score: float = 0.35
    odometry_sigma: tuple[float, float, float] = (0.3, 0.3, float(np.radians(1.0)))
    revisit_sigma: tuple[float, float, float] = (0.2, 0.2, float(np.radians(0.5)))


@dataclass(frozen=True)
class Revisit:
    """A verified revisit: node ``second`` seen from node ``first`` is ``measurement``."""

    first: int
    second: int
    measurement: np.ndarray
    score: float


def _pooled(ego: torch.Tensor) -> torch.Tensor:
    """Hit and free channels of a (C, S, S) grid max-pooled 2x to (2, S', S'), S' odd."""
    channels = ego[[HITS, FREE]].clamp(0.0, 1.0)
    size = ego.shape[-1]
    pad = 1 if ((size + 1) // 2) % 2 == 0 else 0
    return F.max_pool2d(F.pad(channels[None], (0, pad, 0, pad)), 2, ceil_mode=True)[0]


def _as_reference(ego: torch.Tensor, free_weight: float) -> torch.Tensor:
    """(S, S) signal of an observation used as the grid to localize against."""
    hit = (ego[HITS] > 0).to(ego.dtype)
    return hit - free_weight * (ego[FREE] > 0).to(ego.dtype) * (1.0 - hit)


class TopologicalGraph:
    """Place nodes and edges; poses are in the map frame.

    Attributes:
        poses: (N, 3) node poses. embeddings: (N, D). steps: (N,) step index of each node.
        edges: (E, 2) int node pairs; measurements (E, 3); kinds (E,) ODOMETRY or REVISIT.
        observations: N egocentric (2, S, S) hit/free grids kept for verification.
    """

    def __init__(self, config: TopologicalConfig, resolution: float) -> None:
        self.config = config
        self.resolution = resolution
        self.poses = np.zeros((0, 3))
        self.embeddings = np.zeros((0, 0), np.float32)
        self.steps = np.zeros(0, np.int64)
        self.edges = np.zeros((0, 2), np.int64)
        self.measurements = np.zeros((0, 3))
        self.kinds = np.zeros(0, np.int64)
        self.observations: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.poses)

    def needs_node(self, pose: np.ndarray) -> bool:
        """Whether ``pose`` (3,) is far enough (distance or turn) from the last node."""
        if len(self) == 0:
            return True
        relative = se2.between(self.poses[-1], pose)
        return bool(np.hypot(*relative[:2]) >= self.config.node_distance
                    or abs(relative[2]) >= self.config.node_turn)

    def add_node(self, pose: np.ndarray, embedding: torch.Tensor, ego: torch.Tensor,
                 step: int) -> int:
        """Add a place (and the odometry edge from the previous one); return its index.

        Args:
            pose: (3,) map-frame pose. embedding: (D,) unit-norm. ego: (C, S, S) grid.
        """
        index = len(self)
        vector = embedding.detach().float().cpu().numpy()[None]
        self.embeddings = vector if index == 0 else np.vstack([self.embeddings, vector])
        if index > 0:
            self._add_edge(index - 1, index, se2.between(self.poses[-1], pose), ODOMETRY)
        self.poses = np.vstack([self.poses, np.asarray(pose, np.float64)[None]])
        self.steps = np.append(self.steps, step)
        self.observations.append(ego[[HITS, FREE]].clamp(0.0, 1.0))
        return index

    def _add_edge(self, first: int, second: int, measurement: np.ndarray, kind: int) -> None:
        self.edges = np.vstack([self.edges, [[first, second]]])
        self.measurements = np.vstack([self.measurements, measurement[None]])
        self.kinds = np.append(self.kinds, kind)

    def find_revisit(self, node: int) -> Revisit | None:
        """Verify the best embedding matches of ``node`` among older, nearby places."""
        cfg = self.config
        older = np.arange(max(0, node - cfg.recent_nodes))
        if older.size == 0:
            return None
        distance = np.linalg.norm(self.poses[older, :2] - self.poses[node, :2], axis=1)
        similarity = self.embeddings[older] @ self.embeddings[node]
        ok = (distance <= cfg.search_radius) & (similarity >= cfg.min_similarity)
        ranked = older[ok][np.argsort(-similarity[ok])][:cfg.candidates]
        for candidate in ranked:
            measurement, score = self.verify(int(candidate), node)
            if score >= cfg.min_verify_score:
                return Revisit(int(candidate), node, measurement, score)
        return None

    def verify(self, first: int, second: int) -> tuple[np.ndarray, float]:
        """Relative pose of node ``second`` in node ``first`` by correlation, and its score."""
        cfg = self.config
        prior = se2.between(self.poses[first], self.poses[second])
        reference, observed = self.observations[first], self.observations[second]
        coarse_ref = _pooled(reference)
        origin_coarse = -(coarse_ref.shape[-1] / 2.0) * 2 * self.resolution
        coarse = localize(_pooled(observed), _as_reference(coarse_ref, cfg.coarse.free_weight),
                          (origin_coarse, origin_coarse), 2 * self.resolution, prior, cfg.coarse)
        origin = -(reference.shape[-1] / 2.0) * self.resolution
        fine = localize(observed, _as_reference(reference, cfg.fine.free_weight),
                        (origin, origin), self.resolution, coarse.pose, cfg.fine)
        return fine.pose, fine.score

    def add_revisit(self, revisit: Revisit) -> None:
        self._add_edge(revisit.first, revisit.second, revisit.measurement, REVISIT)

    def optimize(self) -> np.ndarray:
        """Run the pose graph; update and return the (N, 3) node poses."""
        information = np.where(
            (self.kinds == REVISIT)[:, None, None],
            np.diag(1.0 / np.square(self.config.revisit_sigma))[None],
            np.diag(1.0 / np.square(self.config.odometry_sigma))[None])
        self.poses = optimize_pose_graph(self.poses, self.edges[:, 0], self.edges[:, 1],
                                         self.measurements, information)
        return self.poses
