"""Egocentric to allocentric: differentiable resampling of top-down grids with a planar pose.

Allocentric maps follow nav_msgs/OccupancyGrid: cell ``(row, col)`` of a map whose corner
is ``origin = (x0, y0)`` covers the square centred on ``x = x0 + (col + 0.5) r``,
``y = y0 + (row + 0.5) r`` for resolution ``r``. Egocentric grids are laid out as in
:mod:`kestrel_core.mapping.egocentric`. Every resampling here is one ``affine_grid`` plus
``grid_sample`` call, so gradients flow to the grid values and to the pose.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Window:
    """A rectangle of map cells: rows ``row0 .. row0 + height``, columns ``col0 .. col0 + width``."""

    row0: int
    col0: int
    height: int
    width: int

    def slices(self) -> tuple[slice, slice]:
        return slice(self.row0, self.row0 + self.height), slice(self.col0, self.col0 + self.width)


def _pixel_to_normalized(size: int, like: torch.Tensor) -> torch.Tensor:
    """(2, 2) rows of the affine map pixel index -> [-1, 1] for ``align_corners=True``."""
    scale = 2.0 / max(size - 1, 1)
    return torch.tensor([scale, -1.0], dtype=like.dtype, device=like.device)


def affine_resample(source: torch.Tensor, pixel_affine: torch.Tensor, out_size: tuple[int, int],
                    mode: str = "bilinear") -> torch.Tensor:
    """Resample grids through an affine map of pixel indices.

    Args:
        source: (B, C, Hs, Ws) grids.
        pixel_affine: (B, 2, 3) map from output (col, row, 1) to source (col, row); pixel
            centres at integer indices.
        out_size: (Ho, Wo).
        mode: ``bilinear`` (differentiable) or ``nearest``.

    Returns:
        (B, C, Ho, Wo), zeros where the output falls outside ``source``.
    """
    batch, _, source_h, source_w = source.shape
    out_h, out_w = out_size
    sx, ox = _pixel_to_normalized(source_w, source)
    sy, oy = _pixel_to_normalized(source_h, source)
    in_norm = torch.stack((torch.stack((sx, sx.new_zeros(()), ox)),
                           torch.stack((sy.new_zeros(()), sy, oy))))  # (2, 3)
    # Output normalized -> output pixel: i = (u + 1) (W - 1) / 2.
    out_from_norm = torch.tensor([[(out_w - 1) / 2.0, 0.0, (out_w - 1) / 2.0],
                                  [0.0, (out_h - 1) / 2.0, (out_h - 1) / 2.0],
                                  [0.0, 0.0, 1.0]], dtype=source.dtype, device=source.device)
    bottom = pixel_affine.new_tensor([0.0, 0.0, 1.0]).expand(batch, 1, 3)
    pixel_affine = torch.cat((pixel_affine.to(source.dtype), bottom), dim=1)  # (B, 3, 3)
    in_norm3 = torch.cat((in_norm, in_norm.new_tensor([[0.0, 0.0, 1.0]])), dim=0)
    theta = (in_norm3 @ pixel_affine @ out_from_norm)[:, :2]
    grid = F.affine_grid(theta, [batch, source.shape[1], out_h, out_w], align_corners=True)
    return F.grid_sample(source, grid, mode=mode, padding_mode="zeros", align_corners=True)


def footprint(pose_xy: tuple[float, float], radius_cells: int, origin: tuple[float, float],
              resolution: float) -> Window:
    """The map window covering an egocentric grid of radius R cells at any heading."""
    reach = radius_cells * math.sqrt(2.0) + 2.0
    col = (pose_xy[0] - origin[0]) / resolution - 0.5
    row = (pose_xy[1] - origin[1]) / resolution - 0.5
    col0, row0 = math.floor(col - reach), math.floor(row - reach)
    size_x = math.ceil(col + reach) - col0 + 1
    size_y = math.ceil(row + reach) - row0 + 1
    return Window(row0, col0, size_y, size_x)


def ego_to_window(ego: torch.Tensor, pose: torch.Tensor, window: Window,
                  origin: tuple[float, float], resolution: float,
                  mode: str = "bilinear") -> torch.Tensor:
    """Warp an egocentric grid into a window of the allocentric map.

    Args:
        ego: (C, S, S) egocentric grid (S = 2R + 1) at the map's resolution.
        pose: (3,) ``(x, y, theta)`` of the base frame in the map frame; may require grad.
        window: the map cells to fill (see ``footprint``).
        origin: (x0, y0) of the map's corner, metres.
        resolution: metres per cell, shared by both grids.
        mode: ``bilinear`` or ``nearest``.

    Returns:
        (C, window.height, window.width) ego values at each window cell, 0 outside the ego grid.
    """
    size = ego.shape[-1]
    radius = (size - 1) / 2.0
    pose = pose.to(ego.dtype)
    cos, sin = torch.cos(pose[2]), torch.sin(pose[2])
    # World position of the window's cell (0, 0) relative to the robot, in cells.
    dx = origin[0] / resolution + window.col0 + 0.5 - pose[0] / resolution
    dy = origin[1] / resolution + window.row0 + 0.5 - pose[1] / resolution
    affine = torch.stack((
        torch.stack((cos, sin, cos * dx + sin * dy + radius)),
        torch.stack((-sin, cos, -sin * dx + cos * dy + radius)),
    ))
    return affine_resample(ego[None], affine[None], (window.height, window.width), mode)[0]


def rotated_egos(ego: torch.Tensor, angles: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """An egocentric grid seen in map-aligned axes at several headings.

    Args:
        ego: (C, S, S).
        angles: (A,) headings, radians.

    Returns:
        (A, C, S, S): entry a is the grid rotated by ``angles[a]`` about its centre cell.
    """
    size = ego.shape[-1]
    radius = (size - 1) / 2.0
    angles = angles.to(ego.dtype)
    cos, sin = torch.cos(angles), torch.sin(angles)
    # Output offset (i - R, j - R) -> ego offset R(-angle) (i - R, j - R).
    affine = torch.stack((
        torch.stack((cos, sin, radius - radius * (cos + sin)), dim=1),
        torch.stack((-sin, cos, radius - radius * (cos - sin)), dim=1),
    ), dim=1)
    return affine_resample(ego[None].expand(len(angles), -1, -1, -1), affine,
                           (size, size), mode)


def map_crop(grid: torch.Tensor, center_xy: tuple[float, float], radius_cells: int,
             origin: tuple[float, float], resolution: float) -> torch.Tensor:
    """Axis-aligned (C, 2K+1, 2K+1) crop of a (C, H, W) map centred exactly (sub-cell) on a point.

    Crop cell (K, K) is centred on ``center_xy``; bilinear, 0 outside the map.
    """
    col = (center_xy[0] - origin[0]) / resolution - 0.5 - radius_cells
    row = (center_xy[1] - origin[1]) / resolution - 0.5 - radius_cells
    affine = grid.new_tensor([[1.0, 0.0, col], [0.0, 1.0, row]])
    size = 2 * radius_cells + 1
    return affine_resample(grid[None], affine[None], (size, size))[0]
