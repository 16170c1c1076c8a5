"""The real ground-truth trajectories (TUM RGB-D, EuRoC, KITTI) the trajectory tests use."""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy.spatial.transform import Rotation

from kestrel_tools.paths import data_dir
from kestrel_tools.trajectory import Trajectory, load_euroc_csv, load_kitti, load_tum

TRAJECTORIES = data_dir() / "trajectories"
FR2_DESK = TRAJECTORIES / "fr2_desk_groundtruth.txt"
FR1_XYZ = TRAJECTORIES / "freiburg1_xyz-groundtruth.txt"
EUROC_V102 = TRAJECTORIES / "V102_groundtruth.csv"
KITTI_00 = TRAJECTORIES / "KITTI_00_gt.txt"
KITTI_00_TIMES = TRAJECTORIES / "KITTI_00_gt_times.txt"
NAMES = ["fr2_desk", "fr1_xyz", "euroc_v102", "kitti_00"]


@cache
def real(name: str) -> Trajectory:
    """A real trajectory by name (loaded once per test session; Trajectory is immutable)."""
    if name == "fr2_desk":
        return load_tum(FR2_DESK)
    if name == "fr1_xyz":
        return load_tum(FR1_XYZ)
    if name == "euroc_v102":
        return load_euroc_csv(EUROC_V102)
    return load_kitti(KITTI_00, KITTI_00_TIMES)


def random_pose(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A rotation (3, 3) and a translation (3,) of a few metres, from a fixed seed."""
    rng = np.random.default_rng(seed)
    return Rotation.random(random_state=seed).as_matrix(), rng.uniform(-5.0, 5.0, 3)
