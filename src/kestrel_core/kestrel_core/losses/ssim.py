"""Structural similarity (Wang et al., 2004) with box-window statistics.

This is the variant used by self-supervised depth and flow training: local means,
variances and covariance come from a ``window x window`` average over a reflection-padded
image (rather than the original 11x11 Gaussian), and the SSIM *map* is returned so that
callers can mask or weight it per pixel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kestrel_core.losses._checks import check_image, check_same_shape

__all__ = ["ssim"]


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    window: int = 3,
    c1: float = 0.01**2,
    c2: float = 0.03**2,
) -> torch.Tensor:
    """Per-pixel, per-channel SSIM between ``x`` and ``y``.

    ``SSIM = (2 mu_x mu_y + c1)(2 s_xy + c2) / ((mu_x^2 + mu_y^2 + c1)(s_x^2 + s_y^2 + c2))``
    with ``mu``, ``s^2`` and ``s_xy`` the (biased) mean, variance and covariance over a
    ``window x window`` box centred on each pixel, the image being reflection-padded by
    ``window // 2`` so the output keeps the input size.

    Args:
        x, y: ``(B, C, H, W)`` floating-point images of the same shape. The default
            constants ``c1 = (0.01 L)^2`` and ``c2 = (0.03 L)^2`` assume a dynamic range
            ``L = 1``, i.e. images in ``[0, 1]``; scale them by ``L^2`` otherwise.
        window: odd box size >= 1; ``H`` and ``W`` must exceed ``window // 2``.
        c1, c2: positive stabilising constants.

    Returns:
        ``(B, C, H, W)`` SSIM map, 1 where the local statistics agree, in ``[-1, 1]`` up
        to the stabilising constants. Differentiable with respect to both inputs.

    Raises:
        ValueError: bad shapes or parameters.
    """
    check_image(x, "x")
    check_image(y, "y")
    check_same_shape(x, y, "x and y")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1 or window % 2 == 0:
        raise ValueError(f"window must be an odd int >= 1, got {window!r}")
    if not (c1 > 0 and c2 > 0):
        raise ValueError(f"c1 and c2 must be positive, got c1={c1}, c2={c2}")
    pad = window // 2
    if min(x.shape[-2:]) <= pad:
        raise ValueError(f"images of {x.shape[-1]}x{x.shape[-2]} are too small for a {window}x{window} window")

    def local_mean(t: torch.Tensor) -> torch.Tensor:
        if pad:
            t = F.pad(t, (pad, pad, pad, pad), mode="reflect")
        return F.avg_pool2d(t, window, stride=1)

    mu_x = local_mean(x)
    mu_y = local_mean(y)
    var_x = local_mean(x * x) - mu_x * mu_x
    var_y = local_mean(y * y) - mu_y * mu_y
    cov_xy = local_mean(x * y) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
    denominator = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return numerator / denominator
