"""Stereo task: SGM disparity of every pair that has ground truth, Middlebury scores.

Ground truth is ``/ground_truth/disparity`` in left-image pixels without ``doffs``, which is
what :func:`kestrel_core.stereo.compute_disparity` returns.
"""

from __future__ import annotations

import numpy as np
import torch

from kestrel_core.stereo import SGMConfig, Workspace, compute_disparity
from kestrel_tools.bags import BagReader
from kestrel_tools.evaluation.decode import float_map, image_array
from kestrel_tools.evaluation.options import EvalOptions
from kestrel_tools.evaluation.progress import progress
from kestrel_tools.evaluation.results import Figure, TaskResult, mean_rows
from kestrel_tools.evaluation.sync import SyncStats, synchronized
from kestrel_tools.metrics import stereo_metrics
from kestrel_tools.sample import topics

REQUIRED = (topics.LEFT_IMAGE, topics.RIGHT_IMAGE, topics.GT_DISPARITY)
METRICS = ("bad1", "bad2", "epe", "density")


class DisparityEstimator:
    """SGM with one reused workspace; ``(H, W, C)`` pair -> ``(H, W)`` float32, NaN invalid."""

    def __init__(self, options: EvalOptions) -> None:
        self.config = SGMConfig(max_disparity=options.max_disparity)
        self.device = options.device
        self.workspace = Workspace()

    def __call__(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            result = compute_disparity(left, right, self.config, self.device,
                                       workspace=self.workspace)
        return result.disparity.cpu().numpy().astype(np.float32)


def disparity_figures(prefix: str, disparity: np.ndarray, truth: np.ndarray,
                      label: str) -> list[Figure]:
    """Estimate, ground truth and absolute error maps (error NaN where either is unknown)."""
    top = float(np.nanmax(truth))
    return [Figure(f"{prefix}_disparity", "disparity", disparity, f"{label} disparity (px)", top),
            Figure(f"{prefix}_disparity_gt", "disparity", truth,
                   "ground-truth disparity (px)", top),
            Figure(f"{prefix}_error", "error", np.abs(disparity - truth),
                   f"{label} |disparity error| (px)", 4.0)]


def evaluate_stereo(bag: BagReader, options: EvalOptions) -> TaskResult:
    """Bad-1, bad-2, EPE and density of SGM on every pair with ground truth."""
    estimator = DisparityEstimator(options)
    result = TaskResult("stereo")
    stats = SyncStats()
    groups = synchronized(bag, REQUIRED, stats)
    for stamp, group in progress(groups, bag.message_count(topics.GT_DISPARITY), "stereo",
                                 options.progress):
        disparity = estimator(image_array(group[topics.LEFT_IMAGE]),
                              image_array(group[topics.RIGHT_IMAGE]))
        truth = float_map(group[topics.GT_DISPARITY])
        result.rows.append({"stamp_ns": stamp, **stereo_metrics(disparity, truth)})
        if not result.figures:
            result.figures = disparity_figures("stereo", disparity, truth, "SGM")
    if not result.rows:
        raise ValueError(f"{bag.path}: no stereo pair has the stamp of a {topics.GT_DISPARITY} "
                         "message")
    result.summary = {"frames": len(result.rows), **mean_rows(result.rows, METRICS)}
    result.notes.append(f"SGM, max disparity {options.max_disparity}, device {options.device}; "
                        f"{stats.dropped} pair(s) without ground truth skipped. bad-N counts "
                        "invalid pixels as errors; EPE is over pixels with an estimate.")
    return result
