"""Running a trained flow network on image arrays."""

from __future__ import annotations

import numpy as np
import torch

from kestrel_core.flow.learned.network import PyramidFlowNet

__all__ = ["frames_to_tensor", "learned_flow"]


def frames_to_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """``(H, W)`` grey or ``(H, W, 3)`` RGB array (uint8, uint16 or float in [0, 1]) ->
    ``(1, 3, H, W)`` float32 in [0, 1] on ``device``."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise ValueError(f"image must be (H, W) or (H, W, 3), got {array.shape}")
    if np.issubdtype(array.dtype, np.integer):
        scale = 1.0 / np.iinfo(array.dtype).max
    else:
        scale = 1.0
    tensor = torch.from_numpy(np.ascontiguousarray(array)).to(device=device, dtype=torch.float32)
    tensor = tensor.permute(2, 0, 1)[None] * scale
    return tensor.expand(1, 3, *tensor.shape[-2:]) if tensor.shape[1] == 1 else tensor


def learned_flow(model: PyramidFlowNet, first: np.ndarray, second: np.ndarray) -> torch.Tensor:
    """``(2, H, W)`` float32 flow first -> second, on the model's device.

    Args:
        model: a network in eval mode (see :func:`kestrel_core.flow.learned.load_flow_model`).
        first, second: images of one size, as accepted by :func:`frames_to_tensor`.
    """
    if np.shape(first)[:2] != np.shape(second)[:2]:
        raise ValueError(f"frames differ in size: {np.shape(first)} and {np.shape(second)}")
    device = next(model.parameters()).device
    with torch.inference_mode():
        flow = model.estimate(frames_to_tensor(first, device), frames_to_tensor(second, device))
    return flow[0]
