"""Backward warping of images by a dense flow field (differentiable, any device).

Conventions shared by every flow and self-supervision module in Kestrel:

* pixel centres sit at integer coordinates: column ``x`` in ``[0, W-1]``, row ``y`` in
  ``[0, H-1]``;
* a flow ``(B, 2, H, W)`` holds ``(u, v)`` in pixels, channel 0 along x (columns) and
  channel 1 along y (rows);
* backward warping reads the source image at ``(x + u, y + v)``. In
  ``torch.nn.functional.grid_sample`` terms this is ``align_corners=True``: the
  normalised coordinate -1 is the centre of the first pixel and +1 the centre of the
  last one, so no half-pixel shift creeps in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["flow_to_grid", "backward_warp", "inside_image", "pixel_grid", "sample_at"]

_PADDING_MODES = ("border", "zeros", "reflection")
_SAMPLING_MODES = ("bilinear", "nearest", "bicubic")


def pixel_grid(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Pixel-centre coordinates as a ``(1, 2, H, W)`` tensor: channel 0 is x, channel 1 is y."""
    ys = torch.arange(height, device=device, dtype=dtype)
    xs = torch.arange(width, device=device, dtype=dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((grid_x, grid_y)).unsqueeze(0)


def _check_flow(flow: torch.Tensor, name: str = "flow") -> None:
    if not isinstance(flow, torch.Tensor):
        raise ValueError(f"{name} must be a torch tensor, got {type(flow).__name__}")
    if flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(f"{name} must have shape (B, 2, H, W), got {tuple(flow.shape)}")
    if not flow.is_floating_point():
        raise ValueError(f"{name} must be floating point, got {flow.dtype}")


def flow_to_grid(flow: torch.Tensor) -> torch.Tensor:
    """Convert a pixel flow into the sampling grid of ``grid_sample(align_corners=True)``.

    Args:
        flow: ``(B, 2, H, W)`` displacement ``(u, v)`` in pixels.

    Returns:
        ``(B, H, W, 2)`` grid of normalised ``(x, y)`` coordinates of the points
        ``(x + u, y + v)``; ``-1`` and ``+1`` are the centres of the first and last
        pixel. A dimension of size 1 maps its only pixel centre to 0 (its one valid
        position).
    """
    _check_flow(flow)
    _, _, height, width = flow.shape
    return _normalise(pixel_grid(height, width, flow.device, flow.dtype) + flow, height, width)


def _normalise(target: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(B, 2, h, w)`` pixel coordinates in an ``height x width`` image -> ``(B, h, w, 2)``
    normalised grid (``align_corners=True``)."""
    # x_norm = 2 x / (W - 1) - 1; a size-1 axis has a single centre, mapped to 0.
    # (2 x / (W - 1) rounds less than x * (2 / (W - 1)): identity sampling stays exact to 1e-6.)
    extent = target.new_tensor([max(width - 1, 1), max(height - 1, 1)]).view(1, 2, 1, 1)
    offset = target.new_tensor([1.0 if width > 1 else 0.0, 1.0 if height > 1 else 0.0]).view(1, 2, 1, 1)
    return (2 * target / extent - offset).permute(0, 2, 3, 1)


def inside_image(points: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(B, 1, h, w)`` bool: which ``(B, 2, h, w)`` pixel positions ``(x, y)`` lie in an
    ``height x width`` image, ``0 <= x <= width - 1`` and ``0 <= y <= height - 1``."""
    x, y = points[:, 0:1], points[:, 1:2]
    return (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)


def sample_at(image: torch.Tensor, points: torch.Tensor, padding: str = "border",
              mode: str = "bilinear") -> torch.Tensor:
    """``(B, C, H, W)`` image read at ``(B, 2, h, w)`` pixel positions ``(x, y)`` -> ``(B, C,
    h, w)``. ``padding`` and ``mode`` are as in :func:`backward_warp`, which is this at
    ``pixel + flow``; call it directly where the positions themselves are known."""
    grid = _normalise(points, *image.shape[-2:])
    return F.grid_sample(image, grid, mode=mode, padding_mode=padding, align_corners=True)


def backward_warp(
    image: torch.Tensor,
    flow: torch.Tensor,
    padding: str = "border",
    mode: str = "bilinear",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``image`` at ``(x + u, y + v)`` for every pixel ``(x, y)``.

    With ``flow`` the motion from frame 1 to frame 2 and ``image`` frame 2, the result
    is frame 2 resampled into the geometry of frame 1 (what frame 1 should look like).

    Args:
        image: ``(B, C, H_img, W_img)`` floating-point image to sample from. It may differ
            in size from the flow only if the caller knows what it is doing: coordinates
            are always in pixels of ``image``.
        flow: ``(B, 2, H, W)`` pixel displacement, same dtype family as ``image`` (it is
            cast to ``image.dtype``). Non-finite entries are sampled at the pixel itself
            and reported invalid.
        padding: what to read outside the image: ``"border"`` (nearest edge pixel),
            ``"zeros"`` or ``"reflection"``.
        mode: ``"bilinear"`` (default), ``"nearest"`` or ``"bicubic"``.

    Returns:
        ``(warped, valid)``: ``warped`` is ``(B, C, H, W)`` in ``image.dtype``; ``valid``
        is a ``(B, 1, H, W)`` bool mask, True where the sample point lies inside the
        image (``0 <= x + u <= W_img - 1`` and likewise for y) and the flow is finite.
        The mask carries no gradient; gradients flow to ``image`` and ``flow``.

    Raises:
        ValueError: bad shapes, batch mismatch or an unknown padding or mode.
    """
    if not isinstance(image, torch.Tensor) or image.ndim != 4:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"image must be a (B, C, H, W) tensor, got {shape}")
    if not image.is_floating_point():
        raise ValueError(f"image must be floating point, got {image.dtype}")
    _check_flow(flow)
    if image.shape[0] != flow.shape[0]:
        raise ValueError(f"image batch {image.shape[0]} differs from flow batch {flow.shape[0]}")
    if padding not in _PADDING_MODES:
        raise ValueError(f"padding must be one of {_PADDING_MODES}, got {padding!r}")
    if mode not in _SAMPLING_MODES:
        raise ValueError(f"mode must be one of {_SAMPLING_MODES}, got {mode!r}")
    flow = flow.to(image.dtype)
    finite = torch.isfinite(flow).all(dim=1, keepdim=True)
    flow = torch.where(finite, flow, torch.zeros((), dtype=flow.dtype, device=flow.device))

    img_h, img_w = image.shape[-2:]
    target = pixel_grid(flow.shape[2], flow.shape[3], flow.device, flow.dtype) + flow
    warped = sample_at(image, target, padding, mode)

    with torch.no_grad():
        valid = inside_image(target, img_h, img_w) & finite
    return warped, valid
