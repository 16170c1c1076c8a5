"""Correlation volumes between two feature maps.

``c(x1, x2) = <f1(x1), f2(x2)> / C``: the channel-normalised dot product of the features of
frame 1 at ``x1`` and frame 2 at ``x2``. The local volume keeps the ``(2r + 1)^2``
displacements ``x2 = x1 + d``, ``|d|_inf <= r``; the all-pairs volume keeps every ``x2`` and
is meant for coarse scales, where ``h * w`` is small.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["local_correlation", "all_pairs_correlation"]


def _check_pair(f1: torch.Tensor, f2: torch.Tensor) -> None:
    if f1.ndim != 4 or f1.shape != f2.shape:
        raise ValueError(f"features must be two (B, C, H, W) tensors of one shape, got "
                         f"{tuple(f1.shape)} and {tuple(f2.shape)}")


class _LocalCorrelation(torch.autograd.Function):
    """Local correlation with a hand-written backward.

    Autograd through an unfolded window (one batched matmul per pixel) is 5 to 10 times
    slower on the CPU than accumulating one displacement at a time, and it keeps the
    ``(2r+1)``-fold window alive for the backward pass; this keeps only ``f1`` and ``f2``.
    The loops run over the ``(2r+1)^2`` displacements, never over pixels.
    """

    @staticmethod
    def forward(ctx, f1: torch.Tensor, f2: torch.Tensor, radius: int) -> torch.Tensor:
        batch, channels, height, width = f1.shape
        size = 2 * radius + 1
        padded = F.pad(f2, (radius, radius, radius, radius))
        out = f1.new_empty(batch, size * size, height, width)
        for index in range(size * size):
            dy, dx = divmod(index, size)
            torch.sum(f1 * padded[:, :, dy:dy + height, dx:dx + width], dim=1, out=out[:, index])
        ctx.save_for_backward(f1, f2)
        ctx.radius = radius
        return out.div_(channels)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        f1, f2 = ctx.saved_tensors
        radius = ctx.radius
        height, width = f1.shape[-2:]
        size = 2 * radius + 1
        grad = grad / f1.shape[1]
        padded = F.pad(f2, (radius, radius, radius, radius))
        grad_f1 = torch.zeros_like(f1)
        grad_padded = torch.zeros_like(padded)
        for index in range(size * size):
            dy, dx = divmod(index, size)
            weight = grad[:, index:index + 1]
            grad_f1.addcmul_(weight, padded[:, :, dy:dy + height, dx:dx + width])
            grad_padded[:, :, dy:dy + height, dx:dx + width].addcmul_(weight, f1)
        return grad_f1, grad_padded[:, :, radius:radius + height, radius:radius + width], None


def local_correlation(f1: torch.Tensor, f2: torch.Tensor, radius: int) -> torch.Tensor:
    """Correlation of every pixel of ``f1`` with the ``(2r+1)^2`` window around it in ``f2``.

    Args:
        f1, f2: ``(B, C, H, W)`` features (``f2`` usually already warped by the current flow).
        radius: ``r >= 0``, the largest displacement per axis, in feature pixels.

    Returns:
        ``(B, (2r+1)^2, H, W)``; channel ``(dy + r) * (2r + 1) + (dx + r)`` holds
        ``<f1(x, y), f2(x + dx, y + dy)> / C``, zero where ``(x + dx, y + dy)`` is outside.
        Differentiable in both inputs.
    """
    _check_pair(f1, f2)
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    return _LocalCorrelation.apply(f1.contiguous(), f2.contiguous(), radius)


def all_pairs_correlation(f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
    """Correlation of every pixel of ``f1`` with every pixel of ``f2``.

    Args:
        f1, f2: ``(B, C, H, W)`` features.

    Returns:
        ``(B, H, W, H, W)``: entry ``[b, y1, x1, y2, x2] = <f1(x1, y1), f2(x2, y2)> / C``.
    """
    _check_pair(f1, f2)
    batch, channels, height, width = f1.shape
    volume = torch.einsum("bci,bcj->bij", f1.flatten(2), f2.flatten(2)) / channels
    return volume.view(batch, height, width, height, width)
