"""Continuous fusion onto a bird's-eye-view (BEV) grid, after Liang et al., "Deep Continuous
Fusion for Multi-Sensor 3D Object Detection" (ECCV 2018).

Every occupied BEV cell ``i`` (centre ``x_i``, at height 0) gathers its ``k`` nearest LiDAR
points ``j`` (nearest in the ground plane) and sums an MLP over their features and offsets:

    h_i = sum_j MLP([f_j, x_j - x_i])

so point features (e.g. image colours painted onto the points) reach the BEV grid through
a learnable, geometry-aware kernel. Empty cells take an inverse-distance weighted mean of
the ``h`` of their ``k`` nearest occupied cells. Plain height and occupancy channels
(:func:`bev_height_occupancy`) need no learning.

Grid layout (the same as ``nav_msgs/OccupancyGrid``): ``(C, H, W)`` with rows along y and
columns along x; cell ``(r, c)`` has its centre at ``(x_min + (c + 0.5) * res,
y_min + (r + 0.5) * res)``. Points are in the LiDAR (or base) frame, REP-103 axes.

kNN uses ``scipy.spatial.cKDTree`` for CPU tensors and chunked ``torch.cdist`` elsewhere;
neighbour indices carry no gradient, features and the MLP do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import nn

__all__ = [
    "BevGridConfig",
    "ContinuousFusion",
    "bev_cell_centres",
    "bev_cell_index",
    "bev_height_occupancy",
    "bev_mean_features",
    "knn",
]


@dataclass(frozen=True)
class BevGridConfig:
    """The BEV grid: metric extent (metres) in x and y, square cells of ``resolution``."""

    x_range: tuple[float, float] = (0.0, 40.0)
    y_range: tuple[float, float] = (-20.0, 20.0)
    resolution: float = 0.5

    def __post_init__(self) -> None:
        if not self.resolution > 0:
            raise ValueError(f"resolution must be > 0, got {self.resolution}")
        for name in ("x_range", "y_range"):
            low, high = getattr(self, name)
            if not high > low:
                raise ValueError(f"{name} must be (low, high) with high > low, got {(low, high)}")

    @property
    def width(self) -> int:
        """Columns (along x)."""
        return int(round((self.x_range[1] - self.x_range[0]) / self.resolution))

    @property
    def height(self) -> int:
        """Rows (along y)."""
        return int(round((self.y_range[1] - self.y_range[0]) / self.resolution))


def _check_points(points: torch.Tensor) -> None:
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be (N, 3), got {tuple(points.shape)}")


def bev_cell_centres(grid: BevGridConfig, device=None, dtype=torch.float32) -> torch.Tensor:
    """``(H * W, 2)`` ``(x, y)`` centres of the cells in row-major order."""
    xs = grid.x_range[0] + (torch.arange(grid.width, device=device, dtype=dtype) + 0.5) * grid.resolution
    ys = grid.y_range[0] + (torch.arange(grid.height, device=device, dtype=dtype) + 0.5) * grid.resolution
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((xx.reshape(-1), yy.reshape(-1)), dim=1)


def bev_cell_index(points: torch.Tensor, grid: BevGridConfig) -> torch.Tensor:
    """``(N,)`` long row-major cell index of each point, ``-1`` outside the grid or non-finite."""
    _check_points(points)
    col = torch.floor((points[:, 0] - grid.x_range[0]) / grid.resolution)
    row = torch.floor((points[:, 1] - grid.y_range[0]) / grid.resolution)
    inside = (col >= 0) & (col < grid.width) & (row >= 0) & (row < grid.height)
    inside &= torch.isfinite(points).all(dim=1)
    index = (row * grid.width + col).nan_to_num(-1).long()
    return torch.where(inside, index, torch.full_like(index, -1))


def bev_height_occupancy(points: torch.Tensor, grid: BevGridConfig) -> torch.Tensor:
    """Plain BEV channels ``(3, H, W)`` float32: max height z (NaN where empty), occupancy
    (1 where the cell holds a point, else 0) and the point count."""
    index = bev_cell_index(points, grid)
    keep = index >= 0
    index, z = index[keep], points[keep, 2].float()
    cells = grid.height * grid.width
    height = torch.full((cells,), float("-inf"), device=points.device)
    height.scatter_reduce_(0, index, z, reduce="amax", include_self=True)
    count = torch.zeros(cells, device=points.device).index_add_(0, index, torch.ones_like(z))
    occupied = count > 0
    height = torch.where(occupied, height, torch.full_like(height, float("nan")))
    return torch.stack((height, occupied.float(), count)).reshape(3, grid.height, grid.width)


def bev_mean_features(points: torch.Tensor, features: torch.Tensor, grid: BevGridConfig) -> torch.Tensor:
    """``(C, H, W)`` float32 per-cell mean of ``(N, C)`` point features (NaN where empty),
    e.g. the mean painted colour of the points in each cell."""
    index = bev_cell_index(points, grid)
    if features.ndim != 2 or features.shape[0] != points.shape[0]:
        raise ValueError(f"features must be ({points.shape[0]}, C), got {tuple(features.shape)}")
    keep = index >= 0
    index, values = index[keep], features[keep].float()
    cells = grid.height * grid.width
    sums = torch.zeros(cells, features.shape[1], device=points.device).index_add_(0, index, values)
    count = torch.zeros(cells, device=points.device).index_add_(0, index, torch.ones_like(index, dtype=torch.float32))
    means = sums / count[:, None]  # 0 / 0 -> NaN for empty cells
    return means.T.reshape(features.shape[1], grid.height, grid.width)


def knn(queries: torch.Tensor, references: torch.Tensor, k: int, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest references of every query (Euclidean, any dimension ``D``).

    Args:
        queries: ``(Q, D)``; references: ``(R, D)`` with ``R >= 1``; ``k`` is clipped to ``R``.

    Returns:
        ``distances (Q, k)`` and long ``indices (Q, k)`` into ``references``, nearest first,
        both without gradient, on ``queries``' device.
    """
    if references.shape[0] == 0:
        raise ValueError("knn needs at least one reference point")
    k = min(k, references.shape[0])
    if queries.device.type == "cpu":
        tree = cKDTree(references.detach().double().numpy())
        distances, indices = tree.query(queries.detach().double().numpy(), k=k)
        distances, indices = np.asarray(distances).reshape(-1, k), np.asarray(indices).reshape(-1, k)
        return torch.from_numpy(distances).to(queries.dtype), torch.from_numpy(indices).long()
    with torch.no_grad():
        parts = [torch.cdist(block, references).topk(k, dim=1, largest=False) for block in queries.split(chunk)]
    return torch.cat([p.values for p in parts]), torch.cat([p.indices for p in parts])


class ContinuousFusion(nn.Module):
    """Continuous convolution from point features to BEV features.

    Args:
        in_channels: ``C`` of the point features.
        out_channels: channels of the BEV output.
        hidden: widths of the hidden MLP layers (ReLU between); empty = one linear layer.
        k: neighbours per cell (points for occupied cells, occupied cells for empty ones).
    """

    def __init__(self, in_channels: int, out_channels: int, hidden: tuple[int, ...] = (32,), k: int = 8) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        widths = (in_channels + 3, *hidden, out_channels)
        layers: list[nn.Module] = []
        for index, (width_in, width_out) in enumerate(zip(widths[:-1], widths[1:])):
            if index:
                layers.append(nn.ReLU())
            layers.append(nn.Linear(width_in, width_out))
        self.mlp = nn.Sequential(*layers)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.k = k

    def forward(self, points: torch.Tensor, features: torch.Tensor, grid: BevGridConfig) -> torch.Tensor:
        """Fuse ``(N, 3)`` points with ``(N, C)`` features into ``(out_channels, H, W)``.

        Points outside the grid still serve as neighbours of border cells; non-finite
        points are ignored. With no finite point the output is all zeros.
        """
        _check_points(points)
        if features.shape != (points.shape[0], self.in_channels):
            raise ValueError(f"features must be ({points.shape[0]}, {self.in_channels}), got {tuple(features.shape)}")
        finite = torch.isfinite(points).all(dim=1)
        points, features = points[finite], features[finite]
        cells = grid.height * grid.width
        dtype = features.dtype
        if points.shape[0] == 0:
            return torch.zeros(self.out_channels, grid.height, grid.width, device=features.device, dtype=dtype)
        centres = bev_cell_centres(grid, device=points.device, dtype=points.dtype)
        index = bev_cell_index(points, grid)
        occupied = torch.zeros(cells, dtype=torch.bool, device=points.device)
        occupied[index[index >= 0]] = True
        occupied_ids = torch.nonzero(occupied).squeeze(1)
        if occupied_ids.numel() == 0:  # every point lies outside: let the nearest cells carry them
            occupied_ids = knn(points[:, :2], centres, 1)[1].squeeze(1).unique().to(points.device)
            occupied[occupied_ids] = True

        _, neighbours = knn(centres[occupied_ids], points[:, :2], self.k)
        neighbours = neighbours.to(points.device)
        centre_xyz = torch.cat((centres[occupied_ids], torch.zeros_like(centres[occupied_ids, :1])), dim=1)
        offsets = points[neighbours] - centre_xyz[:, None, :]  # (M, k, 3)
        messages = self.mlp(torch.cat((features[neighbours], offsets.to(dtype)), dim=2))
        occupied_features = messages.sum(dim=1)  # (M, out)

        output = torch.zeros(cells, self.out_channels, device=features.device, dtype=dtype)
        output = output.index_copy(0, occupied_ids, occupied_features)
        empty_ids = torch.nonzero(~occupied).squeeze(1)
        if empty_ids.numel():
            distances, nearest = knn(centres[empty_ids], centres[occupied_ids], self.k)
            weights = 1.0 / distances.to(points.device).clamp_min(1e-6)
            weights = (weights / weights.sum(dim=1, keepdim=True)).to(dtype)
            interpolated = (occupied_features[nearest.to(points.device)] * weights[..., None]).sum(dim=1)
            output = output.index_copy(0, empty_ids, interpolated)
        return output.T.reshape(self.out_channels, grid.height, grid.width)
