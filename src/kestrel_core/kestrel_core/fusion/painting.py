"""Point painting: attach image colours or dense per-pixel features to projected points."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from kestrel_core.fusion.projection import Projection

__all__ = ["paint_points"]


def paint_points(projection: Projection, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinearly sample a dense ``(C, H, W)`` map at the projected points.

    The sampling uses ``grid_sample(..., align_corners=True, padding_mode="border")`` with
    ``x_norm = 2 u / (W - 1) - 1``: pixel centres sit at integer ``(u, v)``, so a point at
    an integer ``uv`` gets exactly that pixel's value and one at a half-pixel position the
    mean of its neighbours. Points within half a pixel of the border (still visible) take
    the border value.

    Args:
        projection: from :func:`~kestrel_core.fusion.projection.project_points`; its image
            size need not equal the feature map's: ``uv`` is rescaled so that the corner
            pixel centres coincide (for a feature map at a lower resolution than the image).
        features: ``(C, H, W)`` tensor (RGB image, logits, embeddings, ...), any dtype;
            numpy is accepted too. It is moved to the projection's device.

    Returns:
        ``painted (N, C)`` float (``features``' dtype if floating, else float32) with zeros
        for invisible points, and ``visible (N,)`` bool.
    """
    if not isinstance(features, torch.Tensor):
        features = torch.as_tensor(np.ascontiguousarray(features))
    if features.ndim != 3:
        raise ValueError(f"features must be (C, H, W), got {tuple(features.shape)}")
    dtype = features.dtype if features.is_floating_point() else torch.float32
    device = projection.uv.device
    fmap = features.to(device=device, dtype=dtype)
    channels, height, width = fmap.shape
    uv = projection.uv.to(dtype)
    # image pixel coordinates -> feature-map pixel coordinates (corner centres aligned)
    sx = (width - 1) / max(projection.width - 1, 1)
    sy = (height - 1) / max(projection.height - 1, 1)
    gx = 2.0 * uv[:, 0] * sx / max(width - 1, 1) - 1.0
    gy = 2.0 * uv[:, 1] * sy / max(height - 1, 1) - 1.0
    grid = torch.stack((gx, gy), dim=-1)
    visible = projection.visible
    grid = torch.where(visible[:, None], grid, torch.zeros_like(grid))  # avoid NaN/inf in grid_sample
    sampled = F.grid_sample(
        fmap[None], grid[None, None], mode="bilinear", padding_mode="border", align_corners=True
    )  # (1, C, 1, N)
    painted = sampled[0, :, 0].T
    painted = torch.where(visible[:, None], painted, torch.zeros_like(painted))
    return painted, visible
