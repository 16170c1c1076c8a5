"""Optical flow: classical pyramidal Lucas-Kanade in torch (CPU or CUDA), a coarse-to-fine
block-matching + smoothed Lucas-Kanade method with occlusion filling (the most accurate), a learned
coarse-to-fine network trained without labels (:mod:`kestrel_core.flow.learned`), OpenCV
baselines, metrics and the Middlebury colour coding. :class:`FlowEstimator` runs any method.

Typical use::

    from kestrel_core.flow import LKConfig, dense_lucas_kanade, flow_to_color

    flow = dense_lucas_kanade(frame0, frame1, LKConfig(levels=5), "auto")  # (2, H, W)
    preview = flow_to_color(flow)                                          # (H, W, 3) RGB

Conventions: flow ``(u, v)`` in pixels along x (columns) and y (rows), from the first
frame to the second, ``second(x + u, y + v) ~ first(x, y)``. Torch results are
``(2, H, W)``; OpenCV baselines return OpenCV's ``(H, W, 2)``; metrics and colour coding
accept both.
"""

from kestrel_core.flow.baselines import DIS_PRESETS, FarnebackConfig, opencv_dis_flow, opencv_farneback_flow
from kestrel_core.flow.coarse_to_fine import CoarseToFineConfig, coarse_to_fine_flow
from kestrel_core.flow.estimators import FLOW_METHODS, FlowEstimator
from kestrel_core.flow.lucas_kanade import LKConfig, dense_lucas_kanade, track_points
from kestrel_core.flow.metrics import endpoint_errors, flow_epe, flow_outlier_rate
from kestrel_core.flow.visualize import flow_to_color, make_color_wheel

__all__ = [
    "FLOW_METHODS",
    "FlowEstimator",
    "LKConfig",
    "dense_lucas_kanade",
    "track_points",
    "CoarseToFineConfig",
    "coarse_to_fine_flow",
    "DIS_PRESETS",
    "FarnebackConfig",
    "opencv_dis_flow",
    "opencv_farneback_flow",
    "endpoint_errors",
    "flow_epe",
    "flow_outlier_rate",
    "flow_to_color",
    "make_color_wheel",
]
