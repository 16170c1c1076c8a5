"""Photometric (appearance) error: a blend of SSIM dissimilarity and absolute difference.

``error = alpha * (1 - SSIM) / 2 + (1 - alpha) * |a - b|``, averaged over channels, as in
self-supervised depth and flow training (Godard et al., 2017 and 2019).
"""

from __future__ import annotations

import torch

from kestrel_core.losses._checks import check_image, check_same_shape
from kestrel_core.losses.ssim import ssim

__all__ = ["photometric_error", "photometric_loss"]


def photometric_error(a: torch.Tensor, b: torch.Tensor, alpha: float = 0.85, window: int = 3) -> torch.Tensor:
    """Per-pixel photometric error map.

    Args:
        a, b: ``(B, C, H, W)`` images in ``[0, 1]``, same shape (typically a target image
            and a source image warped into its geometry).
        alpha: weight of the SSIM term, in ``[0, 1]``.
        window: SSIM window (odd).

    Returns:
        ``(B, 1, H, W)`` error, ``alpha * clamp((1 - SSIM) / 2, 0, 1) + (1 - alpha) |a - b|``
        with both terms averaged over channels. Keeping the map (rather than its mean)
        lets callers take a per-pixel minimum over several source frames.
    """
    check_image(a, "a")
    check_image(b, "b")
    check_same_shape(a, b, "a and b")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    l1 = (a - b).abs().mean(dim=1, keepdim=True)
    if alpha == 0.0:
        return l1
    dssim = ((1.0 - ssim(a, b, window=window)) / 2.0).clamp(0.0, 1.0).mean(dim=1, keepdim=True)
    return alpha * dssim + (1.0 - alpha) * l1


def photometric_loss(
    a: torch.Tensor,
    b: torch.Tensor,
    alpha: float = 0.85,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean photometric error, optionally over a mask.

    Args:
        a, b: ``(B, C, H, W)`` images in ``[0, 1]``.
        alpha: weight of the SSIM term.
        mask: optional ``(B, 1, H, W)`` (or broadcastable to it) bool mask or float
            weights, e.g. the ``valid`` mask of :func:`kestrel_core.geometry.warp.backward_warp`.

    Returns:
        0-dim tensor: the (weighted) mean of :func:`photometric_error`. With a mask that
        selects nothing the result is 0 (and still differentiable), never NaN.
    """
    error = photometric_error(a, b, alpha)
    if mask is None:
        return error.mean()
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"mask must be a torch tensor, got {type(mask).__name__}")
    try:
        weights = torch.broadcast_to(mask, error.shape).to(error.dtype)
    except RuntimeError as err:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to {tuple(error.shape)}") from err
    return (error * weights).sum() / weights.sum().clamp_min(1e-12)
