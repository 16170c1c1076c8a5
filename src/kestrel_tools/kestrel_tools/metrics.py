"""Accuracy metrics against ground truth.

Conventions: ground truth and predictions are (H, W) float arrays with NaN (or inf in the
ground truth) where unknown. Only pixels with ground truth are scored.
"""

from __future__ import annotations

import numpy as np


def stereo_metrics(disparity: np.ndarray, ground_truth: np.ndarray) -> dict[str, float]:
    """Middlebury-style disparity scores.

    Args:
        disparity: (H, W) predicted disparity in pixels, NaN where invalid.
        ground_truth: (H, W) true disparity, NaN or inf where unknown.

    Returns:
        ``bad1``, ``bad2``: share of ground-truth pixels whose error exceeds 1 or 2 px,
        counting invalid predictions as errors; ``epe``: mean absolute error over pixels
        where both are valid; ``density``: share of ground-truth pixels with a prediction.
    """
    if disparity.shape != ground_truth.shape:
        raise ValueError(f"disparity is {disparity.shape} but ground truth is {ground_truth.shape}")
    known = np.isfinite(ground_truth)
    if not known.any():
        raise ValueError("the ground truth has no valid pixel")
    predicted = np.isfinite(disparity) & known
    error = np.full(disparity.shape, np.inf)
    error[predicted] = np.abs(disparity[predicted] - ground_truth[predicted])
    n_known = int(known.sum())
    return {
        "bad1": float((error[known] > 1.0).sum() / n_known),
        "bad2": float((error[known] > 2.0).sum() / n_known),
        "epe": float(error[predicted].mean()) if predicted.any() else float("nan"),
        "density": float(predicted.sum() / n_known),
    }
