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


def forward_backward_occlusion(forward: torch.Tensor, backward: torch.Tensor,
                               alpha1: float = 0.01, alpha2: float = 0.5) -> torch.Tensor:
    """``(B, 1, H, W)`` bool occlusion mask of ``forward`` by the relative forward-backward check.

    A pixel is occluded when ``|f + b'|^2 > alpha1 (|f|^2 + |b'|^2) + alpha2``, with ``f`` the
    forward flow and ``b'`` the backward flow sampled at ``x + f(x)`` (Meister et al., UnFlow,
    2018): the tolerance grows with the motion. Pixels whose target leaves the image count as
    occluded. No gradient flows through the mask.

    Args:
        forward, backward: ``(B, 2, H, W)`` flows frame 1 -> 2 and frame 2 -> 1, in pixels.
    """
    if forward.ndim != 4 or forward.shape != backward.shape or forward.shape[1] != 2:
        raise ValueError(f"flows must be two (B, 2, H, W) tensors of one shape, got "
                         f"{tuple(forward.shape)} and {tuple(backward.shape)}")
    with torch.no_grad():
        backward_at_target, inside = backward_warp(backward, forward, padding="zeros")
        mismatch = (forward + backward_at_target).square().sum(dim=1, keepdim=True)
        scale = forward.square().sum(dim=1, keepdim=True) + backward_at_target.square().sum(dim=1, keepdim=True)
        return (mismatch > alpha1 * scale + alpha2) | ~inside
