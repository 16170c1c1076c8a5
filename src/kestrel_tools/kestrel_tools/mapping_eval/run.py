"""Run raw odometry and the Kestrel mapper variants on one world and score them.

Every method sees the same scans and the same drifting odometry. Trajectories are scored
with ``kestrel_tools.trajectory.evaluate`` (SE(3) alignment; RPE over ``rpe_delta`` metres)
and maps with ``map_iou`` against the world.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
import time

import numpy as np
import torch

from kestrel_core.mapping.mapper import Mapper, MapperConfig
from kestrel_core.mapping.io import occupancy_values
from kestrel_tools.mapping_eval.odometry import as_trajectory
from kestrel_tools.mapping_eval.world import ScannerConfig, World, map_iou, render_scan
from kestrel_tools.trajectory import evaluate

METHODS = ("raw odometry", "Kestrel: localization", "Kestrel: localization + loop closure")


@dataclass(frozen=True)
class MethodResult:
    """ATE / RPE (m, deg) after SE(3) alignment, map IoU, wall time (s), loop closures."""

    name: str
    poses: np.ndarray
    ate: float
    rpe: float
    rpe_deg: float
    iou: float
    seconds: float
    loops: int


def render_scans(world: World, poses: np.ndarray, config: ScannerConfig,
                 seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """One noisy scan per (K, 3) true pose, seeded."""
    rng = np.random.default_rng(seed)
    return [render_scan(world, pose, config, rng) for pose in poses]


def run_method(name: str, config: MapperConfig, scans: list[tuple[np.ndarray, np.ndarray]],
               odometry: np.ndarray, device: str = "cpu") -> tuple[np.ndarray, Mapper, int, float]:
    """Final (K, 3) poses, the mapper, loop closures and seconds for one method."""
    variant = {"raw odometry": replace(config, localize=False, loop_closure=False),
               "Kestrel: localization": replace(config, localize=True, loop_closure=False),
               "Kestrel: localization + loop closure": replace(config, localize=True,
                                                               loop_closure=True)}[name]
    mapper = Mapper(variant, device)
    loops = 0
    start = time.perf_counter()
    with torch.inference_mode():
        for (points, returned), odom in zip(scans, odometry):
            result = mapper.step(torch.as_tensor(points, dtype=torch.float32), odom,
                                 torch.as_tensor(returned))
            loops += int(result.loop_closed)
    return mapper.poses, mapper, loops, time.perf_counter() - start


def evaluate_methods(world: World, times: np.ndarray, truth: np.ndarray, odometry: np.ndarray,
                     scans: list[tuple[np.ndarray, np.ndarray]], config: MapperConfig,
                     rpe_delta: float = 50.0, methods: tuple[str, ...] = METHODS,
                     device: str = "cpu") -> list[MethodResult]:
    """Score each method against the (K, 3) true poses."""
    reference = as_trajectory(times, truth)
    results = []
    for name in methods:
        poses, mapper, loops, seconds = run_method(name, config, scans, odometry, device)
        errors = evaluate(as_trajectory(times, poses), reference, "se3", 1e-3, rpe_delta, "m")
        memory = mapper.memory
        iou = map_iou(world, occupancy_values(memory.log_odds.cpu().numpy()), memory.origin,
                      memory.config.resolution)
        results.append(MethodResult(name, poses, errors.ate_rmse, errors.rpe_rmse,
                                    errors.rpe_rot_deg, iou, seconds, loops))
    return results
