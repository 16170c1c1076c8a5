"""The allocentric map memory: log-odds occupancy, height and feature channels that grow.

Channels of ``MapMemory.grid`` (C, H, W): log-odds occupancy, accumulated hit weight, maximum
and mean obstacle height, then F feature channels. Metric channels are updated in closed form
(clamped log-odds; weighted running averages); feature channels by a running average or a
convolutional GRU. The map grows in whole blocks when an observation reaches past its edge;
content keeps its world position (the origin moves instead).
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from pathlib import Path

import torch
from torch import nn

from kestrel_core.mapping.allocentric import Window, ego_to_window, footprint
from kestrel_core.mapping.egocentric import FREE, HEIGHT_MAX, HITS, METRIC_CHANNELS

LOG_ODDS, WEIGHT, MAP_HEIGHT_MAX, MAP_HEIGHT_MEAN = 0, 1, 2, 3
MAP_CHANNEL_NAMES = ("log_odds", "weight", "height_max", "height_mean")
FEATURE_UPDATES = ("average", "gru")


@dataclass(frozen=True)
class MemoryConfig:
    """Map memory settings.

    Attributes:
        resolution: metres per cell (the egocentric grids must share it).
        hit_log_odds: log-odds added to a cell seen occupied (> 0).
        free_log_odds: log-odds added to a cell seen free (< 0).
        min_log_odds, max_log_odds: clamping bounds, so the map can still change its mind.
        grow_block: the map grows by whole multiples of this many cells per side.
        interpolation: ``bilinear`` (differentiable in the pose) or ``nearest`` for the warp.
        feature_update: ``average`` or ``gru`` for the feature channels.
    """

    resolution: float = 0.5
    hit_log_odds: float = 0.85
    free_log_odds: float = -0.4
    min_log_odds: float = -4.0
    max_log_odds: float = 4.0
    grow_block: int = 64
    interpolation: str = "bilinear"
    feature_update: str = "average"

    def __post_init__(self) -> None:
        if not self.resolution > 0:
            raise ValueError(f"resolution must be > 0, got {self.resolution}")
        if not (self.hit_log_odds > 0 > self.free_log_odds):
            raise ValueError("hit_log_odds must be > 0 and free_log_odds < 0")
        if not self.min_log_odds < 0 < self.max_log_odds:
            raise ValueError("min_log_odds must be < 0 < max_log_odds")
        if self.grow_block < 1:
            raise ValueError(f"grow_block must be >= 1, got {self.grow_block}")
        if self.interpolation not in ("bilinear", "nearest"):
            raise ValueError(f"interpolation must be bilinear or nearest, got {self.interpolation!r}")
        if self.feature_update not in FEATURE_UPDATES:
            raise ValueError(f"feature_update must be one of {FEATURE_UPDATES}, "
                             f"got {self.feature_update!r}")


class ConvGRUCell(nn.Module):
    """Convolutional GRU: ``h' = (1 - z) h + z tanh(W [x, r h])`` with 3x3 convolutions.

    Input x and state h are both (B, F, H, W).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gates = nn.Conv2d(2 * channels, 2 * channels, 3, padding=1)
        self.candidate = nn.Conv2d(2 * channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        update, reset = torch.sigmoid(self.gates(torch.cat((x, h), dim=1))).chunk(2, dim=1)
        candidate = torch.tanh(self.candidate(torch.cat((x, reset * h), dim=1)))
        return (1.0 - update) * h + update * candidate


def build_conv_gru(channels: int, weights: Path | None, device: str | torch.device = "cpu",
                   seed: int = 0) -> ConvGRUCell:
    """A ConvGRU feature updater: weights from ``weights`` (strict keys), else seeded init."""
    if weights is None:
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        cell = ConvGRUCell(channels)
        torch.random.set_rng_state(generator_state)
    else:
        cell = ConvGRUCell(channels)
        cell.load_state_dict(torch.load(Path(weights), map_location="cpu", weights_only=True),
                             strict=True)
    return cell.to(device).eval()


class MapMemory:
    """A growing allocentric map.

    Attributes:
        config: the update rules.
        grid: (4 + F, H, W) channels as described in the module docstring.
        origin: (x0, y0) metres, the corner of cell (0, 0).
    """

    def __init__(self, config: MemoryConfig, grid: torch.Tensor, origin: tuple[float, float],
                 feature_cell: ConvGRUCell | None = None) -> None:
        if grid.ndim != 3 or grid.shape[0] < METRIC_CHANNELS:
            raise ValueError(f"grid must be (>= {METRIC_CHANNELS}, H, W), got {tuple(grid.shape)}")
        if config.feature_update == "gru" and grid.shape[0] > METRIC_CHANNELS and feature_cell is None:
            raise ValueError("feature_update='gru' needs a feature_cell (see build_conv_gru)")
        self.config = config
        self.grid = grid
        self.origin = (float(origin[0]), float(origin[1]))
        self.feature_cell = feature_cell

    @classmethod
    def empty(cls, config: MemoryConfig, center_xy: tuple[float, float], size_cells: int,
              feature_channels: int = 0, device: str | torch.device = "cpu",
              dtype: torch.dtype = torch.float32,
              feature_cell: ConvGRUCell | None = None) -> MapMemory:
        """An unknown square map of ``size_cells`` per side centred on ``center_xy``."""
        half = size_cells * config.resolution / 2.0
        grid = torch.zeros((METRIC_CHANNELS + feature_channels, size_cells, size_cells),
                           dtype=dtype, device=device)
        return cls(config, grid, (center_xy[0] - half, center_xy[1] - half), feature_cell)

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) cells."""
        return tuple(self.grid.shape[1:])  # type: ignore[return-value]

    @property
    def log_odds(self) -> torch.Tensor:
        """(H, W) view of the occupancy log-odds."""
        return self.grid[LOG_ODDS]

    def occupancy_probability(self) -> torch.Tensor:
        """(H, W) P(occupied); 0.5 where never observed."""
        return torch.sigmoid(self.grid[LOG_ODDS])

    def occupancy_signal(self) -> torch.Tensor:
        """(H, W) in [-1, 1]: +1 occupied, -1 free, 0 unknown (``2 P - 1``)."""
        return torch.tanh(0.5 * self.grid[LOG_ODDS])

    def grow_to_contain(self, window: Window) -> Window:
        """Pad the map (in ``grow_block`` steps) so ``window`` lies inside; return it re-indexed."""
        height, width = self.shape
        block = self.config.grow_block

        def pad(need: int) -> int:
            return block * math.ceil(need / block) if need > 0 else 0

        below, left = pad(-window.row0), pad(-window.col0)
        above = pad(window.row0 + window.height - height)
        right = pad(window.col0 + window.width - width)
        if below or left or above or right:
            grown = self.grid.new_zeros((self.grid.shape[0], height + below + above,
                                         width + left + right))
            grown[:, below:below + height, left:left + width] = self.grid
            self.grid = grown
            self.origin = (self.origin[0] - left * self.config.resolution,
                           self.origin[1] - below * self.config.resolution)
        return Window(window.row0 + below, window.col0 + left, window.height, window.width)

    def observation_window(self, pose_xy: tuple[float, float], radius_cells: int) -> Window:
        """The map window an egocentric grid of radius R at ``pose_xy`` touches (growing the map)."""
        window = footprint(pose_xy, radius_cells, self.origin, self.config.resolution)
        return self.grow_to_contain(window)

    def integrate(self, ego: torch.Tensor, pose: torch.Tensor) -> Window:
        """Fuse one egocentric grid into the map.

        Args:
            ego: (4 + F, S, S) grid from ``points_to_ego_grid`` at the map's resolution, F
                matching the map's feature channels.
            pose: (3,) ``(x, y, theta)`` of the base frame in the map frame.

        Returns:
            The window of map cells that was updated.
        """
        if ego.shape[0] != self.grid.shape[0]:
            raise ValueError(f"the ego grid has {ego.shape[0]} channels, the map "
                             f"{self.grid.shape[0]}")
        pose = torch.as_tensor(pose, dtype=self.grid.dtype, device=self.grid.device)
        window = self.observation_window((float(pose[0]), float(pose[1])),
                                         (ego.shape[-1] - 1) // 2)
        seen = (ego[HITS] > 0).to(ego.dtype)
        local = torch.cat((seen[None], (ego[FREE] > 0).to(ego.dtype)[None],
                           ego[HEIGHT_MAX:]), dim=0)
        warped = ego_to_window(local, pose, window, self.origin, self.config.resolution,
                               self.config.interpolation)
        # Weights below 1e-3 are grid_sample's rounding at exact cell alignments, not evidence.
        occupied = warped[HITS].clamp(0.0, 1.0)
        occupied = occupied * (occupied > 1e-3)
        free = warped[FREE].clamp(0.0, 1.0)
        free = free * (free > 1e-3) * (1.0 - occupied)
        values = warped[HEIGHT_MAX:] / occupied.clamp_min(1e-6)  # undo the blend with empty cells

        rows, cols = window.slices()
        crop = self.grid[:, rows, cols]
        updated = torch.empty_like(crop)
        cfg = self.config
        updated[LOG_ODDS] = (crop[LOG_ODDS] + cfg.hit_log_odds * occupied
                             + cfg.free_log_odds * free).clamp(cfg.min_log_odds, cfg.max_log_odds)
        weight = crop[WEIGHT] + occupied
        updated[WEIGHT] = weight
        has_hit = occupied > 0
        first = crop[WEIGHT] == 0
        updated[MAP_HEIGHT_MAX] = torch.where(
            has_hit, torch.where(first, values[0], torch.maximum(crop[MAP_HEIGHT_MAX], values[0])),
            crop[MAP_HEIGHT_MAX])
        share = occupied / weight.clamp_min(1e-6)
        averaged = crop[MAP_HEIGHT_MEAN:] + share * (values[1:] - crop[MAP_HEIGHT_MEAN:])
        updated[MAP_HEIGHT_MEAN] = averaged[0]
        if self.grid.shape[0] > METRIC_CHANNELS:
            if cfg.feature_update == "gru":
                assert self.feature_cell is not None
                state = crop[METRIC_CHANNELS:][None]
                stepped = self.feature_cell(values[2:][None], state)[0]
                updated[METRIC_CHANNELS:] = state[0] + occupied * (stepped - state[0])
            else:
                updated[METRIC_CHANNELS:] = averaged[1:]
        self.grid[:, rows, cols] = updated
        return window
