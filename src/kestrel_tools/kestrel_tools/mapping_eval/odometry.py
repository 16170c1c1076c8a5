"""Real trajectories projected to the plane, and the seeded drifting odometry every method gets.

Drift model (per step of length d metres along the true relative motion):
- heading: a yaw-rate bias (rad/m) that follows a random walk, ``b += N(0, bias_walk^2 d)``,
  adds ``b d``; white heading noise ``N(0, yaw_sigma^2 d)``;
- translation: a constant scale error ``scale_error``; white noise ``N(0, (along d)^2)`` along
  the motion and ``N(0, (across d)^2)`` across it.
The noisy relative motions are chained from the true first pose.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from kestrel_core.mapping import se2
from kestrel_tools.trajectory import Trajectory, load_kitti


@dataclass(frozen=True)
class DriftConfig:
    """Odometry drift; see the module docstring. The defaults are "the standard drift"."""

    bias_walk: float = 1e-5
    yaw_sigma: float = 1e-3
    scale_error: float = 0.01
    along: float = 0.01
    across: float = 0.005
    seed: int = 7


def planar_kitti(path: Path, every: int = 1,
                 times_path: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """KITTI camera poses on the ground plane: world ``(x, y) = (x_cam, z_cam)``.

    The camera's z (forward) axis gives the heading. Returns (K,) times (frame numbers, or
    seconds from KITTI's ``times_path`` when given) and (K, 3) poses ``(x, y, theta)`` of every
    ``every``-th frame.
    """
    trajectory = load_kitti(path, times_path)
    rotation = trajectory.rotations.as_matrix()
    poses = np.column_stack([trajectory.positions[:, 0], trajectory.positions[:, 2],
                             np.arctan2(rotation[:, 2, 2], rotation[:, 0, 2])])
    return trajectory.times[::every], poses[::every]


def drifting_odometry(poses: np.ndarray, config: DriftConfig = DriftConfig()) -> np.ndarray:
    """(K, 3) odometry poses: the true (K, 3) poses' relative motions corrupted and chained."""
    rng = np.random.default_rng(config.seed)
    motions = se2.between(poses[:-1], poses[1:])  # (K-1, 3)
    length = np.linalg.norm(motions[:, :2], axis=1)
    bias = np.cumsum(rng.normal(0.0, config.bias_walk * np.sqrt(length)))
    yaw = motions[:, 2] + bias * length + rng.normal(0.0, config.yaw_sigma * np.sqrt(length))
    direction = motions[:, :2] / np.maximum(length, 1e-9)[:, None]
    normal = np.stack([-direction[:, 1], direction[:, 0]], axis=1)
    translation = (motions[:, :2] * (1.0 + config.scale_error)
                   + direction * rng.normal(0.0, config.along * length)[:, None]
                   + normal * rng.normal(0.0, config.across * length)[:, None])
    noisy = np.column_stack([translation, yaw])
    odometry = [np.asarray(poses[0], np.float64)]
    for motion in noisy:  # a chain of K compositions of 3-vectors, not a per-point loop
        odometry.append(se2.compose(odometry[-1], motion))
    return np.array(odometry)


def as_trajectory(times: np.ndarray, poses: np.ndarray) -> Trajectory:
    """A planar (K, 3) trajectory as a 6-DoF ``Trajectory`` at height 0 for the metrics."""
    positions = np.column_stack([poses[:, :2], np.zeros(len(poses))])
    quaternions = Rotation.from_euler("z", poses[:, 2:3]).as_quat()
    return Trajectory(times, positions, quaternions)
