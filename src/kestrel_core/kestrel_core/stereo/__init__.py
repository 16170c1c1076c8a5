"""Stereo matching: semi-global matching in torch (CPU or CUDA; compiled loops on a CPU
where numba is installed) and an OpenCV baseline.

Typical use::

    from kestrel_core.stereo import SGMConfig, Workspace, compute_disparity

    workspace = Workspace()          # reuse across frames
    result = compute_disparity(left, right, SGMConfig(max_disparity=128), "auto",
                               workspace=workspace)
    result.disparity                 # (H, W) float32 pixels, NaN invalid
"""

from kestrel_core.stereo.aggregation import aggregate_costs
from kestrel_core.stereo.config import SGMConfig
from kestrel_core.stereo.cost import compute_matching_cost
from kestrel_core.stereo.opencv_baseline import OpenCVSGBMConfig, opencv_sgbm_disparity
from kestrel_core.stereo.pipeline import StereoResult, compute_disparity, disparity_from_cost_volume, warm_up
from kestrel_core.stereo.workspace import Workspace

__all__ = [
    "SGMConfig",
    "StereoResult",
    "Workspace",
    "compute_matching_cost",
    "aggregate_costs",
    "compute_disparity",
    "disparity_from_cost_volume",
    "warm_up",
    "OpenCVSGBMConfig",
    "opencv_sgbm_disparity",
]
