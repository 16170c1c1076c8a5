"""Flow task: endpoint error on stereo pairs, photometric error on the video stream.

- Stereo pairs are real flow ground truth along x: the flow from the left to the right image
  is ``(u, v) = (-d, 0)`` with ``d`` the ground-truth disparity. EPE and Fl (KITTI outliers:
  error > 3 px and > 5 % of the true motion) are scored where ``d`` is known.
- Video frames have no ground truth; the photometric error (SSIM + L1) between frame t and
  frame t+1 warped back by the flow t -> t+1 is reported, beside the same error with zero
  flow (the frames as they are), over pixels whose flow stays inside the image.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from kestrel_core.flow import FlowEstimator, flow_epe, flow_outlier_rate
from kestrel_core.geometry.warp import backward_warp
from kestrel_core.losses import photometric_error
from kestrel_tools.bags import BagReader
from kestrel_tools.evaluation.decode import float_map, image_array
from kestrel_tools.evaluation.options import EvalOptions
from kestrel_tools.evaluation.progress import progress
from kestrel_tools.evaluation.results import Figure, TaskResult, mean_rows
from kestrel_tools.evaluation.sync import synchronized
from kestrel_tools.sample import topics

STEREO_REQUIRED = (topics.LEFT_IMAGE, topics.RIGHT_IMAGE, topics.GT_DISPARITY)
VIDEO_REQUIRED = (topics.VIDEO_IMAGE,)
FL_THRESHOLD_PX, FL_RELATIVE = 3.0, 0.05


@lru_cache(maxsize=4)
def flow_estimator(method: str) -> FlowEstimator:
    """One estimator per method for the whole run (a learned model is loaded once, on the
    CPU, and copied to another device on first use)."""
    return FlowEstimator(method, "cpu")


def estimate_flow(first: np.ndarray, second: np.ndarray, options: EvalOptions) -> np.ndarray:
    """``(H, W, 2)`` float32 flow first -> second with the chosen core method."""
    with torch.inference_mode():
        return flow_estimator(options.flow_method)(first, second, options.device)


def flow_from_disparity(disparity: np.ndarray) -> np.ndarray:
    """``(H, W, 2)`` left -> right flow ``(-d, 0)`` of an ``(H, W)`` disparity (NaN kept)."""
    return np.stack([-disparity, np.where(np.isfinite(disparity), 0.0, np.nan)],
                    axis=-1).astype(np.float32)


def to_unit_tensor(image: np.ndarray) -> torch.Tensor:
    """``(H, W)`` or ``(H, W, C)`` uint8 -> ``(1, C, H, W)`` float32 in [0, 1]."""
    pixels = image[..., None] if image.ndim == 2 else image
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[None].float() / 255.0


def photometric_scores(first: np.ndarray, second: np.ndarray,
                       flow: np.ndarray) -> dict[str, float]:
    """Mean photometric error of ``second`` warped by ``flow`` onto ``first``, and with zero
    flow, over the pixels whose warp samples inside ``second``.

    Args:
        first, second: ``(H, W)`` or ``(H, W, C)`` uint8 frames.
        flow: ``(H, W, 2)`` flow first -> second, pixels.
    """
    a, b = to_unit_tensor(first), to_unit_tensor(second)
    flow_t = torch.from_numpy(np.ascontiguousarray(flow)).permute(2, 0, 1)[None]
    with torch.inference_mode():
        warped, valid = backward_warp(b, flow_t)
        warped_error = photometric_error(a, warped)[valid]
        static_error = photometric_error(a, b)[valid]
    return {"photometric": float(warped_error.mean()),
            "photometric_zero_flow": float(static_error.mean()),
            "warp_valid": float(valid.float().mean())}


def evaluate_flow(bag: BagReader, options: EvalOptions) -> TaskResult:
    """EPE and Fl on stereo pairs (if the bag has them) and photometric error on video."""
    result = TaskResult("flow")
    has = set(bag.topics)
    if set(STEREO_REQUIRED) <= has:
        _score_stereo_pairs(bag, options, result)
    else:
        result.notes.append(f"no EPE: the bag lacks one of {', '.join(STEREO_REQUIRED)}")
    if topics.VIDEO_IMAGE in has:
        _score_video(bag, options, result)
    else:
        result.notes.append(f"no photometric error: the bag lacks {topics.VIDEO_IMAGE}")
    if not result.rows:
        raise ValueError(f"{bag.path}: nothing to score optical flow on (needs "
                         f"{', '.join(STEREO_REQUIRED)} or {topics.VIDEO_IMAGE})")
    return result


def _score_stereo_pairs(bag: BagReader, options: EvalOptions, result: TaskResult) -> None:
    rows = []
    groups = synchronized(bag, STEREO_REQUIRED)
    for stamp, group in progress(groups, bag.message_count(topics.GT_DISPARITY), "flow pairs",
                                 options.progress):
        flow = estimate_flow(image_array(group[topics.LEFT_IMAGE]),
                             image_array(group[topics.RIGHT_IMAGE]), options)
        truth = flow_from_disparity(float_map(group[topics.GT_DISPARITY]))
        rows.append({"stamp_ns": stamp, "source": "stereo", "epe": flow_epe(flow, truth),
                     "fl": flow_outlier_rate(flow, truth, threshold=FL_THRESHOLD_PX,
                                             relative=FL_RELATIVE)})
        if not any(f.kind == "flow" for f in result.figures):
            top = float(np.nanmax(np.abs(truth)))
            error = np.hypot(*(flow - truth).transpose(2, 0, 1))
            result.figures += [
                Figure("flow_stereo", "flow", flow, f"{options.flow_method} flow left -> right",
                       top),
                Figure("flow_stereo_gt", "flow", np.nan_to_num(truth), "ground truth (-d, 0)",
                       top),
                Figure("flow_stereo_error", "error", error, "endpoint error (px)", 5.0)]
    result.rows += rows
    result.summary.update({"pairs": len(rows), **mean_rows(rows, ("epe", "fl"))})
    result.notes.append(f"{options.flow_method} flow on stereo pairs, ground truth (-d, 0); "
                        f"Fl: error > {FL_THRESHOLD_PX:g} px and > {FL_RELATIVE:.0%} of |gt|.")


def _score_video(bag: BagReader, options: EvalOptions, result: TaskResult) -> None:
    rows, previous = [], None
    frames = bag.messages(topics.VIDEO_IMAGE)
    for message in progress(frames, bag.message_count(topics.VIDEO_IMAGE), "flow video",
                            options.progress):
        frame = image_array(message.msg)
        if previous is not None:
            flow = estimate_flow(previous, frame, options)
            rows.append({"stamp_ns": message.timestamp_ns, "source": "video",
                         **photometric_scores(previous, frame, flow)})
            if not any(f.name == "flow_video" for f in result.figures):
                result.figures.append(Figure("flow_video", "flow", flow,
                                             f"{options.flow_method} flow, video frames 0 -> 1"))
        previous = frame
    result.rows += rows
    result.summary.update({"video_pairs": len(rows), **mean_rows(
        rows, ("photometric", "photometric_zero_flow"))})
    result.notes.append("video: photometric error 0.85 (1 - SSIM) / 2 + 0.15 L1 in [0, 1] "
                        "after warping, and with zero flow for reference.")
