"""Accepting flow fields as ``(H, W, 2)`` (OpenCV) or ``(2, H, W)`` (torch) arrays."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["as_hw2"]


def as_hw2(flow: object, name: str = "flow") -> np.ndarray:
    """Return ``flow`` as an ``(H, W, 2)`` float numpy array (a view where possible).

    Args:
        flow: numpy array or torch tensor (any device), ``(H, W, 2)`` or ``(2, H, W)``.
            A shape that fits both, ``(2, H, 2)``, is ambiguous and rejected.
        name: used in error messages.

    Raises:
        ValueError: other shapes or types, or an ambiguous shape.
    """
    if isinstance(flow, torch.Tensor):
        flow = flow.detach().cpu().numpy()
    if not isinstance(flow, np.ndarray):
        raise ValueError(f"{name} must be a numpy array or a torch tensor, got {type(flow).__name__}")
    if flow.ndim != 3 or 2 not in (flow.shape[0], flow.shape[2]):
        raise ValueError(f"{name} must have shape (H, W, 2) or (2, H, W), got {flow.shape}")
    if flow.shape[0] == 2 and flow.shape[2] == 2:
        raise ValueError(f"{name} shape {flow.shape} is ambiguous between (H, W, 2) and (2, H, W)")
    if not (np.issubdtype(flow.dtype, np.floating) or np.issubdtype(flow.dtype, np.integer)):
        raise ValueError(f"{name} must be numeric, got {flow.dtype}")
    hw2 = flow if flow.shape[2] == 2 else np.moveaxis(flow, 0, -1)
    return hw2 if np.issubdtype(hw2.dtype, np.floating) else hw2.astype(np.float64)
