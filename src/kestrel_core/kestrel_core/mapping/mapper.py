"""The mapping pipeline: odometry prior, MapNet localization, map update, place graph.

Per observation: predict the pose from odometry and the current ``map -> odom`` correction,
localize the egocentric grid against the map near that prior (fused with a Gaussian motion
prior whose spread grows with the odometry increment), fuse it into the map,
and, when loop closure is on, add place nodes, verify revisits and run the pose graph; after
a large correction the map is rebuilt from the kept observations at the corrected poses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from kestrel_core.device import resolve_device
from kestrel_core.mapping import se2
from kestrel_core.mapping.descriptor import DescriptorConfig, grid_descriptor
from kestrel_core.mapping.egocentric import EgoGridConfig, points_to_ego_grid
from kestrel_core.mapping.localization import LocalizationConfig, localize
from kestrel_core.mapping.memory import MapMemory, MemoryConfig
from kestrel_core.mapping.topological import TopologicalConfig, TopologicalGraph


@dataclass(frozen=True)
class MapperConfig:
    """Everything the pipeline needs.

    Attributes:
        ego, memory, localization, topological, descriptor: the parts' configs (ego and
            memory resolutions must agree).
        localize: correct odometry by localizing against the map.
        loop_closure: keep a place graph, detect revisits and correct with a pose graph.
        rebuild_distance: metres; a pose-graph correction that moves any place node this much
            rebuilds the map from the kept observations.
        initial_size: cells per side of the first map (it grows as needed).
        motion_sigma: (x, y, theta) standard deviations (m, m, rad) of the odometry motion
            prior the localization posterior is fused with, before the odometry has moved;
            None localizes with a flat prior over the search window.
        motion_sigma_per_metre: added to ``motion_sigma`` per metre of the odometry increment
            since the previous step. The defaults suit wheel odometry like
            ``kestrel_tools.mapping_eval``'s drift model: the heading spread is almost all
            per metre, because against a map seen only from behind the correlation has a
            small per-step bias that adds up when steps are short and odometry is trusted
            too little.
    """

    ego: EgoGridConfig = EgoGridConfig()
    memory: MemoryConfig = MemoryConfig()
    localization: LocalizationConfig = LocalizationConfig()
    topological: TopologicalConfig = field(default_factory=TopologicalConfig)
    descriptor: DescriptorConfig = DescriptorConfig()
    localize: bool = True
    loop_closure: bool = False
    rebuild_distance: float = 1.0
    initial_size: int = 256
    motion_sigma: tuple[float, float, float] | None = (0.1, 0.1, float(np.radians(0.02)))
    motion_sigma_per_metre: tuple[float, float, float] = (0.05, 0.05, float(np.radians(0.45)))

    def __post_init__(self) -> None:
        if abs(self.ego.resolution - self.memory.resolution) > 1e-9:
            raise ValueError(f"ego resolution {self.ego.resolution} differs from the map's "
                             f"{self.memory.resolution}")
        if self.motion_sigma is not None and (min(self.motion_sigma) <= 0
                                              or min(self.motion_sigma_per_metre) < 0):
            raise ValueError("motion_sigma must be > 0 and motion_sigma_per_metre >= 0")


@dataclass(frozen=True)
class StepResult:
    """One step's outcome: (3,) pose, (3, 3) covariance (a nominal one when the step was
    not localized), localization score and acceptance, and whether a loop closure moved
    the trajectory enough to rebuild the map."""

    pose: np.ndarray
    covariance: np.ndarray
    score: float
    localized: bool
    loop_closed: bool


class Mapper:
    """Incremental mapping from observations and odometry (all poses ``(x, y, theta)``).

    Run it under ``torch.inference_mode()`` (as ``kestrel_tools.mapping_eval`` does) unless
    gradients through the warps are wanted; keep to one mode for a mapper's lifetime.

    Attributes:
        memory: the map (None before the first observation).
        graph: place graph (empty unless loop closure is on).
        poses: (K, 3) estimated pose of every step so far (corrected after loop closures).
        map_from_odom: (3,) the ``map -> odom`` transform.
    """

    def __init__(self, config: MapperConfig, device: str | torch.device = "cpu") -> None:
        self.config = config
        self.device = resolve_device(device)
        self.memory: MapMemory | None = None
        self.graph = TopologicalGraph(config.topological, config.memory.resolution)
        self.map_from_odom = np.zeros(3)
        self._poses: list[np.ndarray] = []
        self._anchors: list[int] = []  # place node each step hangs from (-1 before any)
        self._observations: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        self._last_odom: np.ndarray | None = None

    @property
    def poses(self) -> np.ndarray:
        return np.array(self._poses).reshape(-1, 3)

    def _ego(self, points: torch.Tensor, hit: torch.Tensor | None) -> torch.Tensor:
        return points_to_ego_grid(points.to(self.device), self.config.ego,
                                  None if hit is None else hit.to(self.device))

    def step(self, points: torch.Tensor, odom_pose: np.ndarray,
             hit: torch.Tensor | None = None,
             embedding: torch.Tensor | None = None, *,
             prior: np.ndarray | None = None,
             localization: LocalizationConfig | None = None,
             update_map: bool = True) -> StepResult:
        """Integrate one observation.

        Args:
            points: (N, 2) or (N, 3) base-frame points (see ``points_to_ego_grid``).
            odom_pose: (3,) base pose in the odometry frame.
            hit: (N,) bool returns, optional.
            embedding: (D,) unit-norm place embedding of this observation (e.g. pooled SSL
                features); default the grid descriptor. Use one kind for a whole run.
            prior: (3,) map-frame pose to search around instead of the odometry prediction
                (e.g. the last estimate after an odometry jump); searched with a flat prior,
                as the odometry increment says nothing about it.
            localization: search settings for this step only (e.g. a wide re-localization
                window); default ``config.localization``.
            update_map: fuse the observation into the map and the place graph; False
                localizes against a fixed map (localization-only mode; needs
                ``loop_closure`` off, as the place graph follows the map).
        """
        cfg = self.config
        if cfg.loop_closure and not update_map:
            raise ValueError("update_map=False needs a mapper without loop closure")
        ego = self._ego(points, hit)
        prior_sigma = None
        if prior is None:
            prior = se2.compose(self.map_from_odom, odom_pose)
            prior_sigma = self._motion_sigma(odom_pose)
        pose, covariance, score, localized = prior, np.diag([1e-2, 1e-2, 1e-4]), 0.0, False
        if self.memory is None:
            self.memory = MapMemory.empty(cfg.memory, (float(prior[0]), float(prior[1])),
                                          cfg.initial_size, device=self.device)
        elif cfg.localize:
            estimate = localize(ego, self.memory.occupancy_signal(), self.memory.origin,
                                cfg.memory.resolution, prior, localization or cfg.localization,
                                prior_sigma)
            score, localized = estimate.score, estimate.accepted
            if localized:
                pose, covariance = estimate.pose, estimate.covariance
        if update_map:
            self.memory.integrate(ego, torch.as_tensor(pose, dtype=torch.float32))
        self._poses.append(np.asarray(pose, np.float64))
        loop_closed = False
        if cfg.loop_closure and update_map:
            self._observations.append((points.detach().cpu(), None if hit is None else hit.cpu()))
            if self.graph.needs_node(pose):
                if embedding is None:
                    embedding = grid_descriptor(ego, cfg.descriptor)
                node = self.graph.add_node(pose, embedding, ego, len(self._poses) - 1)
                revisit = self.graph.find_revisit(node)
                if revisit is not None:
                    self.graph.add_revisit(revisit)
                    loop_closed = self._correct()
            self._anchors.append(len(self.graph) - 1)
        self.map_from_odom = se2.compose(self._poses[-1], se2.inverse(odom_pose))
        self._last_odom = np.asarray(odom_pose, np.float64)
        return StepResult(self._poses[-1], covariance, score, localized, loop_closed)

    def _motion_sigma(self, odom_pose: np.ndarray) -> np.ndarray | None:
        """(3,) motion-prior standard deviations for the odometry increment since the last
        step, or None (flat prior: no motion prior configured, or no previous step)."""
        cfg = self.config
        if cfg.motion_sigma is None or self._last_odom is None:
            return None
        distance = float(np.linalg.norm(se2.between(self._last_odom, odom_pose)[:2]))
        return np.asarray(cfg.motion_sigma) + distance * np.asarray(cfg.motion_sigma_per_metre)

    def _correct(self) -> bool:
        """Pose-graph correction; move every step with its place node; maybe rebuild the map."""
        before = self.graph.poses.copy()
        after = self.graph.optimize()
        anchors = np.array(self._anchors + [len(self.graph) - 1])
        poses = np.array(self._poses)
        attached = anchors >= 0
        relative = se2.between(before[anchors[attached]], poses[attached])
        poses[attached] = se2.compose(after[anchors[attached]], relative)
        self._poses = list(poses)
        moved = float(np.max(np.linalg.norm(after[:, :2] - before[:, :2], axis=1)))
        if moved >= self.config.rebuild_distance:
            self.rebuild()
        return moved >= self.config.rebuild_distance

    def rebuild(self) -> None:
        """Re-integrate every kept observation at its current pose estimate."""
        cfg = self.config
        first = self._poses[0]
        self.memory = MapMemory.empty(cfg.memory, (float(first[0]), float(first[1])),
                                      cfg.initial_size, device=self.device)
        for (points, hit), pose in zip(self._observations, self._poses):
            self.memory.integrate(self._ego(points, hit), torch.as_tensor(pose, dtype=torch.float32))
