"""Egocentric top-down grids from a depth image or a point cloud.

The grid is centred on the sensor's base frame (REP-103: x forward, y left, z up). Cell
``(row, col)`` of a ``(S, S)`` grid, ``S = 2 R + 1``, covers the square centred on
``x = (col - R) * resolution``, ``y = (row - R) * resolution``, so rows grow with y and
columns with x: the layout of nav_msgs/OccupancyGrid data.

Channels (see ``CHANNEL_NAMES``): hit count (occupancy evidence), free-space count from ray
casting, maximum and mean obstacle height, then optional per-point features averaged per cell.
Free space is found without Bresenham: every ray is supersampled at a fixed step and the
samples are scattered into cells, all at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from kestrel_core.geometry.warp import pixel_grid

HITS, FREE, HEIGHT_MAX, HEIGHT_MEAN = 0, 1, 2, 3
CHANNEL_NAMES = ("hits", "free", "height_max", "height_mean")
METRIC_CHANNELS = len(CHANNEL_NAMES)


@dataclass(frozen=True)
class EgoGridConfig:
    """Egocentric grid geometry and ray casting.

    Attributes:
        resolution: metres per cell.
        radius_cells: R; the grid is (2R+1) x (2R+1) cells centred on the sensor.
        max_range: metres; farther points are dropped and their rays end here as free space.
        free_step: ray sample spacing as a fraction of a cell (<= 0.5 leaves no cell skipped).
        max_free_rays: at most this many rays (evenly strided) are cast for free space;
            every point still counts as a hit. 0 casts none.
        min_obstacle_height, max_obstacle_height: metres in the base frame; points outside
            this band (ground, overhangs) add free space along their ray but no hit.
        clear_on_no_return: whether a beam without a return clears space up to ``max_range``.
            Off by default: dark or glancing surfaces drop returns, and clearing through
            them erases walls.
    """

    resolution: float = 0.5
    radius_cells: int = 60
    max_range: float = 30.0
    free_step: float = 0.5
    max_free_rays: int = 4096
    min_obstacle_height: float = -np.inf
    max_obstacle_height: float = np.inf
    clear_on_no_return: bool = False

    def __post_init__(self) -> None:
        if not self.resolution > 0:
            raise ValueError(f"resolution must be > 0, got {self.resolution}")
        if self.radius_cells < 1:
            raise ValueError(f"radius_cells must be >= 1, got {self.radius_cells}")
        if not self.max_range > 0:
            raise ValueError(f"max_range must be > 0, got {self.max_range}")
        if not 0 < self.free_step <= 1:
            raise ValueError(f"free_step must be in (0, 1], got {self.free_step}")
        if self.max_free_rays < 0:
            raise ValueError(f"max_free_rays must be >= 0, got {self.max_free_rays}")

    @property
    def size(self) -> int:
        """S, cells per side."""
        return 2 * self.radius_cells + 1


def _matrix(value: torch.Tensor | np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """A numpy or torch matrix as a tensor of ``like``'s dtype and device (numpy is copied)."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.array(value, dtype=np.float64))
    return value.to(dtype=like.dtype, device=like.device)


def depth_to_points(depth: torch.Tensor, K: torch.Tensor | np.ndarray,
                    base_from_camera: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Back-project a depth image into the base frame.

    Args:
        depth: (H, W) metres along the optical axis (REP-103 optical frame); NaN or <= 0
            marks no return.
        K: (3, 3) intrinsics.
        base_from_camera: (4, 4) pose of the optical frame in the base frame.

    Returns:
        (N, 3) points of the valid pixels, depth's dtype and device.
    """
    if depth.ndim != 2:
        raise ValueError(f"depth must be (H, W), got {tuple(depth.shape)}")
    K = _matrix(K, depth)
    transform = _matrix(base_from_camera, depth)
    if K.shape != (3, 3) or transform.shape != (4, 4):
        raise ValueError(f"K must be (3, 3) and base_from_camera (4, 4), got "
                         f"{tuple(K.shape)} and {tuple(transform.shape)}")
    valid = torch.isfinite(depth) & (depth > 0)
    pixels = pixel_grid(*depth.shape, device=depth.device, dtype=depth.dtype)[0][:, valid]
    z = depth[valid]
    x = (pixels[0] - K[0, 2]) / K[0, 0] * z
    y = (pixels[1] - K[1, 2]) / K[1, 1] * z
    camera_points = torch.stack((x, y, z), dim=1)
    return camera_points @ transform[:3, :3].T + transform[:3, 3]


def _cell_index(xy: torch.Tensor, config: EgoGridConfig) -> torch.Tensor:
    """Flat cell index (...,) of (..., 2) base-frame points; ``S * S`` (a spill bin) outside."""
    size = config.size
    cells = torch.floor(xy * (1.0 / config.resolution) + (config.radius_cells + 0.5))
    col, row = cells[..., 0], cells[..., 1]
    inside = (col >= 0) & (col < size) & (row >= 0) & (row < size)
    flat = torch.where(inside, row * size + col, torch.full_like(col, size * size))
    return flat.long()  # exact: float32 holds integers below 2^24 = 4096^2 cells


def _free_counts(origin: torch.Tensor, xy: torch.Tensor, ranges: torch.Tensor,
                 config: EgoGridConfig) -> torch.Tensor:
    """(S * S,) free-space sample counts along the rays from ``origin`` (2,) to ``xy`` (N, 2).

    Rays are supersampled every ``free_step`` cells and stop half a cell short of ``ranges``
    (N,), so the hit cell itself is not freed.
    """
    cells = config.size * config.size
    if config.max_free_rays == 0 or xy.shape[0] == 0:
        return xy.new_zeros(cells)
    stride = max(1, -(-xy.shape[0] // config.max_free_rays))
    xy, ranges = xy[::stride], ranges[::stride]
    step = config.free_step * config.resolution
    distances = (torch.arange(int(np.ceil(config.max_range / step)), device=xy.device,
                              dtype=xy.dtype) + 0.5) * step  # (D,)
    # Samples past the ray's end are pushed out of the grid, into the spill bin.
    ends = ranges - 0.5 * config.resolution  # (N,)
    along = torch.where(distances[None, :] < ends[:, None], distances[None, :],
                        torch.full((), 4.0 * config.max_range + 4.0 * config.size
                                   * config.resolution, dtype=xy.dtype, device=xy.device))
    direction = (xy - origin) / ranges.clamp_min(1e-9)[:, None]  # (N, 2)
    samples = origin + direction[:, None, :] * along[:, :, None]  # (N, D, 2)
    index = _cell_index(samples, config)
    return torch.bincount(index.flatten(), minlength=cells + 1)[:cells].to(xy.dtype)


def points_to_ego_grid(points: torch.Tensor, config: EgoGridConfig,
                       hit: torch.Tensor | None = None, features: torch.Tensor | None = None,
                       origin: torch.Tensor | None = None) -> torch.Tensor:
    """Egocentric top-down grid of one observation.

    Args:
        points: (N, 3) base-frame points (x forward, y left, z up), or (N, 2) for a planar scan
            at height 0.
        config: grid geometry.
        hit: (N,) bool, False for a beam with no return (then ``points`` is where the beam
            ends; it adds no hit, and free space only with ``clear_on_no_return``).
            Default: all True.
        features: (N, F) per-point features (painted RGB, SSL embeddings), averaged per cell.
        origin: (2,) or (3,) sensor position in the base frame; rays start here. Default 0.

    Returns:
        (4 + F, S, S) float tensor on ``points.device``: hit count, free count, maximum and
        mean obstacle height (0 where no hit), then the F mean features (0 where no hit).
    """
    if points.ndim != 2 or points.shape[1] not in (2, 3):
        raise ValueError(f"points must be (N, 2) or (N, 3), got {tuple(points.shape)}")
    count = points.shape[0]
    dtype = points.dtype if points.is_floating_point() else torch.float32
    points = points.to(dtype)
    if points.shape[1] == 2:
        points = torch.cat((points, points.new_zeros((count, 1))), dim=1)
    hit = torch.ones(count, dtype=torch.bool, device=points.device) if hit is None else hit
    if hit.shape != (count,):
        raise ValueError(f"hit must be ({count},), got {tuple(hit.shape)}")
    if features is not None and (features.ndim != 2 or features.shape[0] != count):
        raise ValueError(f"features must be ({count}, F), got {tuple(features.shape)}")
    origin_xy = (points.new_zeros(2) if origin is None
                 else torch.as_tensor(origin, dtype=dtype, device=points.device)[:2])

    finite = torch.isfinite(points).all(dim=1)
    ranges = torch.linalg.vector_norm(points[:, :2] - origin_xy, dim=1)
    # Returns beyond max_range become free-only rays ending at max_range.
    far = ranges > config.max_range
    scale = torch.where(far, config.max_range / ranges.clamp_min(1e-9), torch.ones_like(ranges))
    xy = origin_xy + (points[:, :2] - origin_xy) * scale[:, None]
    ranges = torch.minimum(ranges, torch.full_like(ranges, config.max_range))
    height = points[:, 2]
    obstacle = (finite & hit & ~far & (height >= config.min_obstacle_height)
                & (height <= config.max_obstacle_height))

    cells = config.size * config.size
    feature_count = 0 if features is None else features.shape[1]
    grid = points.new_zeros((METRIC_CHANNELS + feature_count, cells))

    index = _cell_index(xy, config)
    occupied = obstacle & (index < cells)
    hit_index = index[occupied]
    hits = torch.bincount(hit_index, minlength=cells).to(dtype)
    grid[HITS] = hits
    casts = finite & (hit | config.clear_on_no_return)
    grid[FREE] = _free_counts(origin_xy, xy[casts], ranges[casts], config)

    observed = hits > 0
    hit_height = height[occupied]
    height_max = torch.full((cells,), -torch.inf, dtype=dtype, device=points.device)
    height_max.scatter_reduce_(0, hit_index, hit_height, reduce="amax")
    grid[HEIGHT_MAX] = torch.where(observed, height_max, torch.zeros_like(height_max))
    sums = grid.new_zeros((1 + feature_count, cells))
    values = hit_height[None, :]
    if features is not None:
        values = torch.cat((values, features[occupied].to(dtype).T), dim=0)
    sums.index_add_(1, hit_index, values)
    grid[HEIGHT_MEAN:] = sums / hits.clamp_min(1.0)
    return grid.reshape(-1, config.size, config.size)
