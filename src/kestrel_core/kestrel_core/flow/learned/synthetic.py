"""Pairs with known flow made from single real frames: self-supervision by known warps.

A frame ``I`` and its affine warp ``J(y) = I(A^-1 y)`` are a pair whose flow from ``I`` to
``J`` is known exactly, ``f(x) = A x - x``. Random affine warps of the robot's own frames thus
supervise large displacements from the first step, where the photometric loss alone (whose
gradient only reaches about a pixel) learns them slowly. No label is involved.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from kestrel_core.geometry.warp import pixel_grid

__all__ = ["AffinePairConfig", "multiscale_endpoint_loss", "random_affine_pairs"]


@dataclass(frozen=True)
class AffinePairConfig:
    """Ranges of the random warps (uniform, symmetric about zero, per pair).

    Attributes:
        max_translation: largest ``(x, y)`` shift in pixels.
        max_rotation_deg: largest rotation about the image centre.
        max_scale: largest relative zoom, e.g. 0.05 for 0.95x to 1.05x.
        still_share: expected share of pairs left unwarped (the frame with itself, flow
            zero everywhere): they hold the network to zero flow where nothing moves.
    """

    max_translation: tuple[float, float] = (64.0, 16.0)
    max_rotation_deg: float = 3.0
    max_scale: float = 0.05
    still_share: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.still_share <= 1.0:
            raise ValueError(f"still_share must be in [0, 1], got {self.still_share}")


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
    batch, _, height, width = frames.shape
    device, dtype = frames.device, frames.dtype

    def uniform(*shape: int) -> torch.Tensor:
        return (2 * torch.rand(*shape, generator=generator) - 1).to(device=device, dtype=dtype)

    moving = torch.ones(batch, device=device, dtype=dtype)
    if config.still_share > 0:  # (no draw otherwise: earlier recipes keep their random stream)
        moving = (torch.rand(batch, generator=generator) >= config.still_share).to(device=device, dtype=dtype)
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
    normalised = torch.stack([2 * source[:, 0] / (width - 1) - 1, 2 * source[:, 1] / (height - 1) - 1], -1)
    second = F.grid_sample(frames, normalised, mode="bilinear", padding_mode="border", align_corners=True)
    valid = ((moved[:, :1] >= 0) & (moved[:, :1] <= width - 1)
             & (moved[:, 1:] >= 0) & (moved[:, 1:] <= height - 1))
    return second, flow, valid


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
