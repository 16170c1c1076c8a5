"""Trajectory files, association, alignment and error metrics (ATE, RPE).

Conventions: times in seconds, positions in metres, quaternions scalar last (x, y, z, w); a
pose maps body to world coordinates.
"""

from kestrel_tools.trajectory.align import ALIGN_MODES, align, apply_alignment
from kestrel_tools.trajectory.associate import associate, associate_times
from kestrel_tools.trajectory.io import (FORMATS, load_euroc_csv, load_kitti, load_trajectory,
                                         load_tum, save_tum)
from kestrel_tools.trajectory.metrics import (DELTA_UNITS, RelativeError, TrajectoryErrors,
                                              ate_rmse, delta_pairs, evaluate, rpe_rmse)
from kestrel_tools.trajectory.types import Trajectory

__all__ = [
    "ALIGN_MODES", "DELTA_UNITS", "FORMATS", "RelativeError", "Trajectory", "TrajectoryErrors",
    "align", "apply_alignment", "associate", "associate_times", "ate_rmse", "delta_pairs",
    "evaluate", "load_euroc_csv", "load_kitti", "load_trajectory", "load_tum", "rpe_rmse",
    "save_tum",
]
