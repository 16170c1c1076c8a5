"""Small image filters shared by the flow methods: window means, separable kernels,
Gaussian pyramids, flow upsampling and median filtering, all in torch (CPU or CUDA).

Images are ``(B, C, h, w)`` tensors; every filter replicates or clips at the border so
that values near the edges are averages of real pixels only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["box_mean", "box_sum", "window_counts", "separable", "gaussian_pyramid", "upsample_flow", "median_filter"]

# Levels are only built while the smaller image side stays at least this large.
MIN_LEVEL_SIDE = 8
BINOMIAL_5 = (1.0 / 16.0, 4.0 / 16.0, 6.0 / 16.0, 4.0 / 16.0, 1.0 / 16.0)


def box_sum(tensor: torch.Tensor, window: int) -> torch.Tensor:
    """Sum of ``(B, C, h, w)`` values over the part of a ``window x window`` box (odd
    side) that lies inside the image.

    Each axis is summed by binary decomposition of ``window``: sums of 1, 2, 4, ...
    neighbours are built by doubling and the needed ones added, ``log2(window)`` slice
    additions per axis. No long running sums are formed, so float32 keeps full relative
    precision (a running-sum difference would lose the small entries of a structure
    tensor), and the cost barely grows with the window.
    """
    return _axis_sum(_axis_sum(tensor, window, -1), window, -2)


def box_mean(tensor: torch.Tensor, window: int) -> torch.Tensor:
    """Average of ``(B, C, h, w)`` values over the part of a ``window x window`` box (odd
    side) that lies inside the image; see :func:`box_sum`."""
    return box_sum(tensor, window) / window_counts(*tensor.shape[-2:], window, tensor)


def window_counts(height: int, width: int, window: int, like: torch.Tensor) -> torch.Tensor:
    """``(height, width)`` number of pixels of each clipped ``window x window`` box (the
    divisor of :func:`box_mean`), in the dtype and device of ``like``."""
    return _window_count(height, window, like)[:, None] * _window_count(width, window, like)[None, :]


def _axis_sum(tensor: torch.Tensor, window: int, dim: int) -> torch.Tensor:
    """Sum over ``[i - r, i + r]`` along ``dim`` (``r = window // 2``), zeros outside."""
    radius = window // 2
    size = tensor.shape[dim]
    pad = [0, 0, 0, 0]
    pad[0 if dim == -1 else 2] = radius
    pad[1 if dim == -1 else 3] = radius
    block = F.pad(tensor, pad)  # block[j] holds the sum of `width` samples from j
    total, start, width, remaining = None, 0, 1, window
    while remaining:
        if remaining & 1:
            piece = block.narrow(dim, start, size)
            total = piece.clone() if total is None else total.add_(piece)
            start += width
        remaining >>= 1
        if remaining:
            length = block.shape[dim] - width
            block = block.narrow(dim, 0, length) + block.narrow(dim, width, length)
            width *= 2
    return total


def _window_count(size: int, window: int, like: torch.Tensor) -> torch.Tensor:
    """Number of in-range samples of each clipped window along an axis of ``size``."""
    radius = window // 2
    index = torch.arange(size, device=like.device)
    return ((index + radius).clamp(max=size - 1) - (index - radius).clamp(min=0) + 1).to(like.dtype)


def separable(image: torch.Tensor, taps_x: tuple[float, ...], taps_y: tuple[float, ...]) -> torch.Tensor:
    """Correlate a ``(B, C, h, w)`` image with ``outer(taps_y, taps_x)`` (odd lengths),
    replicating the border; shifted slices keep short kernels cheap on the CPU."""
    rx, ry = len(taps_x) // 2, len(taps_y) // 2
    height, width = image.shape[-2:]
    padded = F.pad(image, (rx, rx, 0, 0), mode="replicate") if rx else image
    rows = sum(tap * padded[..., :, k : k + width] for k, tap in enumerate(taps_x) if tap != 0.0)
    padded = F.pad(rows, (0, 0, ry, ry), mode="replicate") if ry else rows
    return sum(tap * padded[..., k : k + height, :] for k, tap in enumerate(taps_y) if tap != 0.0)


def gaussian_pyramid(image: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Gaussian pyramid of a ``(B, C, h, w)`` image, finest first, at most ``levels``
    levels and none whose smaller side is under 8 pixels. Each level blurs with the
    5-tap binomial kernel and averages 2x2 blocks, so coarse pixel ``i`` sits at fine
    coordinate ``2 i + 0.5``."""
    pyramid = [image]
    for _ in range(levels - 1):
        current = pyramid[-1]
        if min(current.shape[-2:]) // 2 < MIN_LEVEL_SIDE:
            break
        pyramid.append(F.avg_pool2d(separable(current, BINOMIAL_5, BINOMIAL_5), 2))
    return pyramid


def upsample_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Coarse ``(B, 2, h, w)`` flow to the next finer pyramid level of ``size`` (``2h`` or
    ``2h + 1`` rows, likewise columns): fine pixel ``x`` reads the coarse flow at
    ``(x - 0.5) / 2`` (bilinear, clamped to the border) and doubles it."""
    height, width = size
    coarse_h, coarse_w = flow.shape[-2:]
    if not (0 <= height - 2 * coarse_h <= 1 and 0 <= width - 2 * coarse_w <= 1):
        raise ValueError(f"cannot upsample a {coarse_h}x{coarse_w} flow to {height}x{width}")
    # align_corners=False at scale 2 samples exactly (x - 0.5) / 2; an odd last row or
    # column lies beyond the last coarse centre and reads the border, as replication does
    doubled = 2.0 * F.interpolate(flow, scale_factor=2.0, mode="bilinear", align_corners=False)
    return F.pad(doubled, (0, width - 2 * coarse_w, 0, height - 2 * coarse_h), mode="replicate")


def median_filter(tensor: torch.Tensor, size: int) -> torch.Tensor:
    """Per-channel median of a ``(B, C, h, w)`` tensor over ``size x size`` neighbourhoods
    (odd ``size``), replicating the border."""
    radius = size // 2
    batch, channels, height, width = tensor.shape
    padded = F.pad(tensor, (radius,) * 4, mode="replicate")
    patches = F.unfold(padded.reshape(batch * channels, 1, *padded.shape[-2:]), size)
    return patches.median(dim=1).values.reshape(batch, channels, height, width)
