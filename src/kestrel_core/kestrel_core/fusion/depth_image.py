"""Sparse depth images (z-buffered camera projection) and LiDAR range images.

Both are vectorised torch (any device): the nearest point wins per pixel through
``scatter_reduce(..., reduce="amin")`` on flattened pixel indices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from kestrel_core.fusion.projection import Projection

__all__ = ["RangeImageConfig", "sparse_depth_image", "range_image", "spherical_indices"]


def _zbuffer(flat_index: torch.Tensor, values: torch.Tensor, size: int) -> torch.Tensor:
    """Per flat index the minimum of ``values`` (``inf`` where nothing landed)."""
    out = torch.full((size,), float("inf"), dtype=values.dtype, device=values.device)
    out.scatter_reduce_(0, flat_index, values, reduce="amin", include_self=True)
    return torch.where(torch.isinf(out), torch.full_like(out, float("nan")), out)


def sparse_depth_image(projection: Projection, height: int, width: int) -> torch.Tensor:
    """Rasterise projected points into a sparse depth image with a z-buffer.

    Each visible point falls into pixel ``(round(v), round(u))`` (pixel centres at integer
    coordinates); where several points share a pixel the nearest (smallest depth) wins.

    Args:
        projection: output of :func:`~kestrel_core.fusion.projection.project_points`.
        height, width: image size (normally the camera's).

    Returns:
        ``(H, W)`` float32 depth in metres on the projection's device, NaN where empty.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    cols = torch.round(projection.uv[:, 0])
    rows = torch.round(projection.uv[:, 1])
    keep = projection.visible & (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    keep = keep & torch.isfinite(projection.depth)
    flat = rows[keep].long() * width + cols[keep].long()
    depth = projection.depth[keep].to(torch.float32)
    return _zbuffer(flat, depth, height * width).view(height, width)


@dataclass(frozen=True)
class RangeImageConfig:
    """Spherical projection of a spinning LiDAR.

    Attributes:
        height: rows (beams), > 0. Row 0 looks up at ``fov_up_deg``.
        width: columns (azimuth bins), > 0. The centre column looks along +x (forward);
            columns run clockwise seen from above (azimuth from +180 deg down to -180 deg).
        fov_up_deg, fov_down_deg: elevation of the top and bottom edges of the image in
            degrees (``fov_up_deg > fov_down_deg``); points outside are dropped.
        min_range: points closer than this (metres) are dropped (>= 0).
    """

    height: int = 64
    width: int = 1024
    fov_up_deg: float = 3.0
    fov_down_deg: float = -25.0
    min_range: float = 0.0

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"range image size must be positive, got {self.height}x{self.width}")
        if not -90.0 <= self.fov_down_deg < self.fov_up_deg <= 90.0:
            raise ValueError(
                f"need -90 <= fov_down_deg < fov_up_deg <= 90, got {self.fov_down_deg}, {self.fov_up_deg}"
            )
        if not self.min_range >= 0:
            raise ValueError(f"min_range must be >= 0, got {self.min_range}")


def spherical_indices(
    points: torch.Tensor, config: RangeImageConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Range-image cell of each point (REP-103 LiDAR frame: x forward, y left, z up).

    Args:
        points: ``(N, 3)`` float tensor.
        config: the range image geometry.

    Returns:
        ``rows (N,)`` long, ``cols (N,)`` long, ``ranges (N,)`` float and ``valid (N,)``
        bool (finite, beyond ``min_range`` and inside the vertical field of view).
    """
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be (N, 3), got {tuple(points.shape)}")
    if not points.is_floating_point():
        points = points.float()
    ranges = torch.linalg.vector_norm(points, dim=1)
    valid = torch.isfinite(ranges) & (ranges > max(config.min_range, 1e-9))
    safe = torch.where(valid, ranges, torch.ones_like(ranges))
    azimuth = torch.atan2(points[:, 1], points[:, 0])
    elevation = torch.asin((points[:, 2] / safe).clamp(-1.0, 1.0))
    up = math.radians(config.fov_up_deg)
    down = math.radians(config.fov_down_deg)
    row_f = (up - elevation) / (up - down) * config.height
    col_f = 0.5 * (1.0 - azimuth / math.pi) * config.width
    valid = valid & (row_f >= 0) & (row_f < config.height)
    rows = torch.floor(row_f).clamp(0, config.height - 1).long()
    cols = torch.floor(col_f).clamp(0, config.width - 1).long()
    return rows, cols, ranges, valid


def range_image(points: torch.Tensor, config: RangeImageConfig = RangeImageConfig()) -> torch.Tensor:
    """Spherical range image of a point cloud; the nearest point wins per cell.

    Args:
        points: ``(N, 3)`` float tensor in the LiDAR frame (x forward, y left, z up).
        config: image geometry, see :class:`RangeImageConfig`.

    Returns:
        ``(H, W)`` range in metres (the points' floating dtype, their device), NaN where
        empty.
    """
    rows, cols, ranges, valid = spherical_indices(points, config)
    flat = rows[valid] * config.width + cols[valid]
    return _zbuffer(flat, ranges[valid], config.height * config.width).view(config.height, config.width)
