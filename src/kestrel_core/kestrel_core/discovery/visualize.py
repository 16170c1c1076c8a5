"""Instance maps drawn over images (CLI overlays, docs figures, the node's ``overlay``)."""

from __future__ import annotations

import numpy as np

__all__ = ["PALETTE", "instance_overlay"]

# RGB colours of objects 1, 2, ... (cycled); index 0 is unused (background keeps the image).
PALETTE = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60]], np.float32)


def instance_overlay(image: np.ndarray, instances: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Tint every object of an instance map.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        instances: ``(H, W)`` int ids, 0 background.
        alpha: weight of the object colour.

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    if image.shape[:2] != instances.shape or image.ndim != 3:
        raise ValueError(f"image {image.shape} and instance map {instances.shape} do not match")
    ids = np.where(instances > 0, (instances - 1) % (len(PALETTE) - 1) + 1, 0)
    blend = np.where((instances > 0)[..., None], (1 - alpha) * image + alpha * PALETTE[ids], image)
    return blend.astype(np.uint8)
