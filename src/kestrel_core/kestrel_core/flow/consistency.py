"""Forward-backward consistency of two flows: occlusion and unreliable-flow masks."""

from __future__ import annotations

import numpy as np
import torch

from kestrel_core.geometry.warp import backward_warp


def occlusion_mask(forward: np.ndarray, backward: np.ndarray, threshold: float) -> np.ndarray:
    """``(H, W)`` bool, True where the forward-backward check fails.

    A pixel ``x`` is occluded (or its flow unreliable) when
    ``|f_fw(x) + f_bw(x + f_fw(x))| > threshold``, when ``x + f_fw(x)`` leaves the image,
    or when either flow is not finite there. ``backward`` is sampled bilinearly.
    """
    fw = torch.from_numpy(np.ascontiguousarray(forward)).permute(2, 0, 1)[None]
    bw = torch.from_numpy(np.ascontiguousarray(backward)).permute(2, 0, 1)[None]
    bw_at_target, inside = backward_warp(bw, fw, padding="zeros")
    mismatch = torch.linalg.vector_norm(fw + bw_at_target, dim=1)[0]
    consistent = inside[0, 0] & torch.isfinite(mismatch) & (mismatch <= threshold)
    return ~consistent.numpy()
