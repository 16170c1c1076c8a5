"""Shape checks shared by the loss functions."""

from __future__ import annotations

import torch


def check_image(tensor: object, name: str) -> torch.Tensor:
    """Require a floating-point ``(B, C, H, W)`` tensor and return it."""
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name} must be a torch tensor, got {type(tensor).__name__}")
    if tensor.ndim != 4:
        raise ValueError(f"{name} must have shape (B, C, H, W), got {tuple(tensor.shape)}")
    if not tensor.is_floating_point():
        raise ValueError(f"{name} must be floating point, got {tensor.dtype}")
    return tensor


def check_same_shape(a: torch.Tensor, b: torch.Tensor, names: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{names} differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
