"""Pairs with known flow made from single real frames: self-supervision by known warps.

A frame ``I`` and its affine warp ``J(y) = I(A^-1 y)`` are a pair whose flow from ``I`` to
``J`` is known exactly, ``f(x) = A x - x``. Random affine warps of the robot's own frames thus
supervise large displacements from the first step, where the photometric loss alone (whose
gradient only reaches about a pixel) learns them slowly. No label is involved.

A single warp moves the whole image smoothly. :func:`random_layered_pairs` adds what real
scenes have and a warp lacks: objects that move on their own. Elliptical patches cut from
other frames are pasted on top and shifted by their own translations, which gives motion
boundaries and occlusions with the flow still known exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from kestrel_core.geometry.warp import inside_image, pixel_grid, sample_at

__all__ = ["AffinePairConfig", "multiscale_endpoint_loss", "random_affine_pairs", "random_layered_pairs"]


@dataclass(frozen=True)
class AffinePairConfig:
    """Ranges of the random warps (uniform, symmetric about zero, per pair).

    Attributes:
        max_translation: largest ``(x, y)`` shift in pixels.
        max_rotation_deg: largest rotation about the image centre.
        max_scale: largest relative zoom, e.g. 0.05 for 0.95x to 1.05x.
        still_share: expected share of pairs left unwarped (the frame with itself, flow
            zero everywhere): they hold the network to zero flow where nothing moves.
        objects: moving patches pasted on each pair by :func:`random_layered_pairs`.
        max_object_translation: largest ``(x, y)`` shift of a patch, in pixels.
        object_radius: smallest and largest semi-axis of a patch, as a share of the image's
            height (vertical axis) or width (horizontal axis).
    """

    max_translation: tuple[float, float] = (64.0, 16.0)
    max_rotation_deg: float = 3.0
    max_scale: float = 0.05
    still_share: float = 0.0
    objects: int = 0
    max_object_translation: tuple[float, float] = (48.0, 24.0)
    object_radius: tuple[float, float] = (0.08, 0.3)

    def __post_init__(self) -> None:
        if not 0.0 <= self.still_share <= 1.0:
            raise ValueError(f"still_share must be in [0, 1], got {self.still_share}")
        if self.objects < 0:
            raise ValueError(f"objects must be >= 0, got {self.objects}")
        low, high = self.object_radius
        if not 0.0 < low <= high:
            raise ValueError(f"object_radius must be 0 < low <= high, got {self.object_radius}")


def _uniform(generator: torch.Generator | None, like: torch.Tensor, *shape: int) -> torch.Tensor:
    """Uniform in ``[-1, 1)``, drawn on the CPU (one stream on every device), cast like ``like``."""
    return (2 * torch.rand(*shape, generator=generator) - 1).to(device=like.device, dtype=like.dtype)


def _moving_pairs(generator: torch.Generator | None, config: AffinePairConfig,
                  like: torch.Tensor, batch: int) -> torch.Tensor:
    """``(B,)`` 1 for the pairs that move, 0 for the still ones (``config.still_share``)."""
    if config.still_share == 0:  # (no draw: earlier recipes keep their random stream)
        return like.new_ones(batch)
    return (torch.rand(batch, generator=generator) >= config.still_share).to(like)


def _lands_inside(flow: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` bool: the pixels whose target ``x + flow(x)`` lies inside the image."""
    height, width = flow.shape[-2:]
    return inside_image(pixel_grid(height, width, flow.device, flow.dtype) + flow, height, width)


def random_affine_pairs(frames: torch.Tensor, config: AffinePairConfig,
                        generator: torch.Generator | None = None,
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Warp each frame by a random affine map.

    Args:
        frames: ``(B, C, H, W)`` first frames.

    Returns:
        ``(second, flow, valid)``: ``(B, C, H, W)`` warped frames, ``(B, 2, H, W)`` flow in
        pixels from ``frames`` to ``second``, and a ``(B, 1, H, W)`` bool mask of the pixels
        whose target lies inside the image (where the flow can be checked).
    """
    if frames.ndim != 4:
        raise ValueError(f"frames must be (B, C, H, W), got {tuple(frames.shape)}")
    return _affine_pairs(frames, config, _moving_pairs(generator, config, frames, frames.shape[0]),
                         generator)


def _affine_pairs(frames: torch.Tensor, config: AffinePairConfig, moving: torch.Tensor,
                  generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`random_affine_pairs` with the ``(B,)`` moving-pair mask already drawn."""
    batch, _, height, width = frames.shape
    device, dtype = frames.device, frames.dtype

    def uniform(*shape: int) -> torch.Tensor:
        return _uniform(generator, frames, *shape)

    angle = torch.deg2rad(uniform(batch) * config.max_rotation_deg) * moving
    scale = 1 + uniform(batch) * config.max_scale * moving
    shift = uniform(batch, 2) * torch.tensor(config.max_translation, dtype=dtype, device=device) \
        * moving.view(batch, 1)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    linear = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (B, 2, 2)
    centre = torch.tensor([(width - 1) / 2, (height - 1) / 2], dtype=dtype, device=device)
    # A x = L (x - c) + c + t; the flow is A x - x.
    grid = pixel_grid(height, width, device, dtype).expand(batch, 2, height, width)
    relative = (grid - centre.view(1, 2, 1, 1)).flatten(2)                       # (B, 2, HW)
    moved = (linear @ relative).view(batch, 2, height, width) + centre.view(1, 2, 1, 1) \
        + shift.view(batch, 2, 1, 1)
    flow = moved - grid
    # J(y) = I(A^-1 y): sample I at A^-1 of every pixel y of J.
    inverse = torch.linalg.inv(linear)
    source = (inverse @ (grid - centre.view(1, 2, 1, 1) - shift.view(batch, 2, 1, 1)).flatten(2)
              ).view(batch, 2, height, width) + centre.view(1, 2, 1, 1)
    return sample_at(frames, source), flow, inside_image(moved, height, width)


def random_layered_pairs(frames: torch.Tensor, config: AffinePairConfig,
                         generator: torch.Generator | None = None,
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A random affine pair per frame with ``config.objects`` moving patches on top.

    Patch ``k`` is an ellipse at a random place, textured by another frame of the batch
    (rolled by ``k + 1`` along the batch and mirrored left to right). It lies on the first
    image and moves, by its own random shift, to the second; later patches cover earlier
    ones. Where a pair is still (``still_share``), its patches stay still too.

    Args:
        frames: ``(B, C, H, W)`` real frames.

    Returns:
        ``(first, second, flow, valid)``: the ``(B, C, H, W)`` first and second images, the
        ``(B, 2, H, W)`` exact flow from first to second, and the ``(B, 1, H, W)`` bool mask
        of the pixels whose target lies inside the image. Pixels hidden in the second image
        by a patch still carry their true flow.
    """
    if frames.ndim != 4:
        raise ValueError(f"frames must be (B, C, H, W), got {tuple(frames.shape)}")
    batch, _, height, width = frames.shape
    moving = _moving_pairs(generator, config, frames, batch)
    second, flow, _ = _affine_pairs(frames, config, moving, generator)
    moving = moving.view(batch, 1, 1, 1)
    first = frames
    grid = pixel_grid(height, width, frames.device, frames.dtype)                   # (1, 2, H, W)
    size = frames.new_tensor([width, height]).view(1, 2, 1, 1)
    low, high = config.object_radius
    limit = frames.new_tensor(config.max_object_translation).view(1, 2, 1, 1)
    for layer in range(config.objects):
        texture = frames.roll(layer + 1, dims=0).flip(-1)
        centre = (_uniform(generator, frames, batch, 2).view(batch, 2, 1, 1) + 1) / 2 * (size - 1)
        axes = (low + (high - low) * (_uniform(generator, frames, batch, 2) + 1) / 2
                ).view(batch, 2, 1, 1) * size
        shift = _uniform(generator, frames, batch, 2).view(batch, 2, 1, 1) * limit * moving

        def inside(points: torch.Tensor) -> torch.Tensor:
            return (((points - centre) / axes) ** 2).sum(dim=1, keepdim=True) <= 1.0

        # In the second image the patch shows, at y, what it showed at y - shift.
        source = grid - shift
        covered = inside(grid)                                                  # (B, 1, H, W)
        first = torch.where(covered, texture, first)
        second = torch.where(inside(source), sample_at(texture, source), second)
        flow = torch.where(covered, shift.expand_as(flow), flow)
    return first, second, flow, _lands_inside(flow)


def multiscale_endpoint_loss(flows: list[torch.Tensor], truth: torch.Tensor,
                             valid: torch.Tensor, power: float = 1.0,
                             min_valid_share: float = 0.99) -> torch.Tensor:
    """Mean endpoint error of every level's flow against a known flow, over valid pixels.

    Args:
        flows: the network's outputs, coarse to fine, each ``(B, 2, h, w)`` in pixels of its own
            level, the last one at the input size (see ``PyramidFlowNet.forward``).
        truth: ``(B, 2, H, W)`` known flow; ``valid``: ``(B, 1, H, W)`` bool.
        power: 1 averages the endpoint error ``|e|``; any other ``q > 0`` averages the
            generalized Charbonnier penalty ``(|e| + 0.01)^q`` instead (``q < 1`` is robust
            to outliers of an imperfect reference flow).
        min_valid_share: a level pixel is scored when more than this share of the input
            pixels under it is valid; its reference is the mean of the valid ones. Lower it
            for sparse masks (a teacher's check), which leave few coarse pixels fully valid.

    Each level is compared with the known flow resized to it (and scaled to its pixels); the
    levels are averaged with equal weight, so the coarse ones, which set the large
    displacements, are trained as directly as the fine ones.
    """
    if not power > 0:
        raise ValueError(f"power must be positive, got {power}")
    height, width = truth.shape[-2:]
    losses = []
    for flow in flows:
        level_h, level_w = flow.shape[-2:]
        scale = truth.new_tensor([level_w / width, level_h / height]).view(1, 2, 1, 1)
        share = F.interpolate(valid.to(truth.dtype), size=(level_h, level_w), mode="area")
        level_truth = (F.interpolate(truth * valid, size=(level_h, level_w), mode="area")
                       / share.clamp_min(1e-6) * scale)
        level_valid = share > min_valid_share
        error = torch.linalg.vector_norm(flow - level_truth, dim=1, keepdim=True)
        if power != 1.0:
            error = (error + 0.01).pow(power)
        losses.append((error * level_valid).sum() / level_valid.sum().clamp_min(1))
    return torch.stack(losses).mean()
