"""Running flow at a reduced size: the working size and rescaling a flow back."""

from __future__ import annotations

import cv2
import numpy as np


def working_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """(width, height) the flow is computed at: unchanged when ``max_width`` is 0 or not
    exceeded, else scaled to ``max_width`` keeping the aspect ratio."""
    if max_width <= 0 or width <= max_width:
        return width, height
    return max_width, max(1, round(height * max_width / width))


def resize_flow(flow: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resample an ``(h, w, 2)`` flow to ``(height, width, 2)`` and scale its vectors by the
    same factors, so they are in pixels of the new size."""
    small_h, small_w = flow.shape[:2]
    if (small_w, small_h) == (width, height):
        return flow
    resized = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
    resized[..., 0] *= width / small_w
    resized[..., 1] *= height / small_h
    return resized
