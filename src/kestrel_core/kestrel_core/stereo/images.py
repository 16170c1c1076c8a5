"""Input checking and conversion of a rectified stereo pair to grey-level tensors."""

from __future__ import annotations

import torch

from kestrel_core.imaging import gray_pair

__all__ = ["prepare_pair"]


def prepare_pair(left: object, right: object, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Check a rectified pair and convert it to grey levels on ``device``.

    Args:
        left, right: ``(H, W)`` grey, ``(H, W, 1)`` or ``(H, W, 3)`` RGB images as numpy
            arrays or torch tensors (any device), dtype uint8, uint16 or floating point,
            both of the same dtype; scaled as :func:`kestrel_core.imaging.gray_pair` says.
        device: where the result lives.

    Returns:
        ``(gray_left, gray_right)``, each ``(H, W)`` float32 on a 0-255 scale.

    Raises:
        ValueError: unsupported type, shape or dtype, non-finite values, or a size
            mismatch between left and right (both sizes are in the message).
    """
    left_dtype, right_dtype = getattr(left, "dtype", None), getattr(right, "dtype", None)
    if left_dtype != right_dtype:
        raise ValueError(f"left and right images differ in dtype: {left_dtype} vs {right_dtype}")
    gray_left, gray_right = gray_pair(left, right, ("left", "right"), device)
    return (gray_left.to(torch.float32).mul_(255.0), gray_right.to(torch.float32).mul_(255.0))
