"""Depth propagation along image-edge affinities, in torch (differentiable).

The torch counterpart of the smoothness graph of
:mod:`kestrel_core.fusion.guided_completion`: 4-neighbour edge weights
``exp(-|lab_p - lab_q|^2 / (2 sigma^2)) + floor`` on the CIE Lab image, and Jacobi sweeps
of the normal equations with the measured pixels held fixed: every empty pixel becomes the
weighted mean of its four neighbours. Started from the classical solution, a few dozen
sweeps leave it almost unchanged; with edge weights rescaled by a network
(:class:`~kestrel_core.fusion.learned_completion.DepthCompletionNet`, ``head="propagation"``)
they move depth along the edges the network learned instead of the raw colour edges, and
gradients flow back through every sweep.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["edge_weights", "propagate", "rgb_to_lab"]

_RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
_WHITE = (0.950456, 1.0, 1.088754)  # D65
_EPSILON = 0.008856  # (6/29)^3, where the Lab curve turns linear


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` sRGB in ``[0, 1]`` -> ``(B, 3, H, W)`` CIE Lab with OpenCV's 8-bit
    scaling (``L * 255 / 100``, ``a + 128``, ``b + 128``), as the guided completion uses."""
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    matrix = torch.tensor(_RGB_TO_XYZ, dtype=rgb.dtype, device=rgb.device)
    white = torch.tensor(_WHITE, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    xyz = torch.einsum("ij,bjhw->bihw", matrix, linear) / white
    f = torch.where(xyz > _EPSILON, xyz.clamp_min(1e-9) ** (1 / 3), 7.787 * xyz + 16 / 116)
    y = xyz[:, 1:2]
    lightness = torch.where(y > _EPSILON, 116 * f[:, 1:2] - 16, 903.3 * y)
    a = 500 * (f[:, 0:1] - f[:, 1:2])
    b = 200 * (f[:, 1:2] - f[:, 2:3])
    return torch.cat((lightness * 255 / 100, a + 128, b + 128), dim=1)


def edge_weights(lab: torch.Tensor, colour_sigma: float, floor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Smoothness weights of ``(B, 3, H, W)`` Lab: ``(B, 1, H, W - 1)`` between horizontal
    and ``(B, 1, H - 1, W)`` between vertical neighbours."""
    two_sigma_sq = 2.0 * colour_sigma**2
    horizontal = torch.exp(-(lab[..., :, 1:] - lab[..., :, :-1]).square().sum(1, keepdim=True) / two_sigma_sq)
    vertical = torch.exp(-(lab[..., 1:, :] - lab[..., :-1, :]).square().sum(1, keepdim=True) / two_sigma_sq)
    return horizontal + floor, vertical + floor


def propagate(start: torch.Tensor, sparse: torch.Tensor, measured: torch.Tensor, horizontal: torch.Tensor,
              vertical: torch.Tensor, sweeps: int) -> torch.Tensor:
    """``sweeps`` Jacobi sweeps from ``start``.

    Args:
        start: ``(B, 1, H, W)`` initial depth (e.g. the guided classical completion).
        sparse, measured: ``(B, 1, H, W)`` measured depth and its bool mask (held fixed).
        horizontal, vertical: edge weights, ``(B, 1, H, W - 1)`` and ``(B, 1, H - 1, W)``.

    Returns:
        ``(B, 1, H, W)``: each empty pixel the weighted mean of its neighbours, repeatedly.
    """
    left = F.pad(horizontal, (1, 0))  # weight to the left neighbour; 0 at the border
    right = F.pad(horizontal, (0, 1))
    up = F.pad(vertical, (0, 0, 1, 0))
    down = F.pad(vertical, (0, 0, 0, 1))
    total = left + right + up + down
    depth = start
    for _ in range(sweeps):
        padded = F.pad(depth, (1, 1, 1, 1), mode="replicate")
        neighbours = (left * padded[..., 1:-1, :-2] + right * padded[..., 1:-1, 2:]
                      + up * padded[..., :-2, 1:-1] + down * padded[..., 2:, 1:-1])
        depth = torch.where(measured, sparse, neighbours / total)
    return depth
