"""A static 2D evaluation world and a LiDAR-like range scanner that sees it.

World model (documented here because the benchmark depends on it): an occupancy grid of
walls and boxes built around a real trajectory, as a street scene would be.

- Building facades: every cell whose distance to the driven path is between
  ``wall_distance`` and ``wall_distance + wall_thickness`` metres is a wall, so streets are
  corridors that open at junctions exactly where the path branches. Facades have gaps
  (entrances, side alleys): ``gap_count_per_km`` square holes of ``gap_size`` metres at
  random facade cells.
- Boxes (parked cars, kiosks, poles): ``box_count_per_km`` rectangles of random size
  (``box_size`` range) and random orientation, centred at random cells between
  ``box_clearance`` metres from the path and the facades; box cells closer than
  ``box_clearance`` to the path are dropped, so the path itself always stays free.

Scanner model: ``beams`` rays over 360 degrees from the base frame origin, each marched
through the grid at half a cell; the surface is then found by bisection between the last
free and the first occupied sample. Range noise is Gaussian (``range_sigma`` m), a fraction
``dropout`` of beams return nothing, and beams with nothing within ``max_range`` return
nothing. Everything is seeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class World:
    """A 2D occupancy world.

    Attributes:
        occupied: (H, W) bool, nav_msgs/OccupancyGrid layout (row = y, column = x).
        origin: (x0, y0) metres of the corner of cell (0, 0).
        resolution: metres per cell.
    """

    occupied: np.ndarray
    origin: tuple[float, float]
    resolution: float

    def cells_of(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) integer (row, col) of (N, 2) world points (may fall outside)."""
        col = np.floor((xy[:, 0] - self.origin[0]) / self.resolution).astype(np.int64)
        row = np.floor((xy[:, 1] - self.origin[1]) / self.resolution).astype(np.int64)
        return np.stack([row, col], axis=1)


@dataclass(frozen=True)
class StreetWorldConfig:
    """Street-like world around a path; see the module docstring. Lengths in metres."""

    resolution: float = 0.25
    margin: float = 40.0
    wall_distance: float = 9.0
    wall_thickness: float = 1.0
    gap_count_per_km: float = 60.0
    gap_size: float = 6.0
    box_count_per_km: float = 400.0
    box_size: tuple[float, float] = (0.6, 4.5)
    box_clearance: float = 3.0
    seed: int = 0


def street_world(path_xy: np.ndarray, config: StreetWorldConfig = StreetWorldConfig()) -> World:
    """Walls and boxes around a (N, 2) path of world points (metres)."""
    res = config.resolution
    low = path_xy.min(axis=0) - config.margin
    high = path_xy.max(axis=0) + config.margin
    width, height = np.ceil((high - low) / res).astype(int)
    origin = (float(low[0]), float(low[1]))
    path_cells = np.round((path_xy - low) / res - 0.5).astype(np.int32)
    canvas = np.full((height, width), 255, np.uint8)
    cv2.polylines(canvas, [path_cells.reshape(-1, 1, 2)], False, 0, 1)
    distance = cv2.distanceTransform(canvas, cv2.DIST_L2, 5) * res  # metres to the path
    walls = (distance >= config.wall_distance) & (distance < config.wall_distance
                                                  + config.wall_thickness)

    rng = np.random.default_rng(config.seed)
    length_km = float(np.linalg.norm(np.diff(path_xy, axis=0), axis=1).sum()) / 1000.0
    wall_cells = np.argwhere(walls)
    gap_half = int(round(config.gap_size / res / 2))
    gaps = np.zeros_like(canvas)
    for row, col in wall_cells[rng.choice(len(wall_cells), int(config.gap_count_per_km
                                                                 * length_km) + 1)]:
        cv2.rectangle(gaps, (int(col) - gap_half, int(row) - gap_half),
                      (int(col) + gap_half, int(row) + gap_half), 1, -1)
    occupied = walls & (gaps == 0)

    boxes = np.zeros_like(canvas)
    band = np.argwhere((distance > config.box_clearance + config.box_size[1] / 2)
                       & (distance < config.wall_distance))
    count = int(config.box_count_per_km * length_km) + 1
    centres = band[rng.choice(len(band), count)][:, ::-1].astype(np.float32)  # (col, row)
    sizes = rng.uniform(*config.box_size, size=(count, 2)) / res
    angles = rng.uniform(0.0, 180.0, size=count)
    for centre, size, angle in zip(centres, sizes, angles):
        corners = cv2.boxPoints(((float(centre[0]), float(centre[1])), (float(size[0]),
                                 float(size[1])), float(angle)))
        cv2.fillPoly(boxes, [np.round(corners).astype(np.int32)], 1)
    # A box must not reach into the path's clearance band, wherever its centre was.
    occupied |= (boxes > 0) & (distance > config.box_clearance)
    return World(occupied, origin, res)


@dataclass(frozen=True)
class ScannerConfig:
    """A planar 360-degree range sensor; see the module docstring."""

    beams: int = 360
    max_range: float = 30.0
    range_sigma: float = 0.03
    dropout: float = 0.02


def _solid(world: World, xy: np.ndarray) -> np.ndarray:
    """Whether (..., 2) world points fall in occupied cells (outside the grid is free)."""
    cells = world.cells_of(xy.reshape(-1, 2))
    height, width = world.occupied.shape
    inside = ((cells >= 0) & (cells < [height, width])).all(axis=1)
    solid = np.zeros(len(cells), bool)
    solid[inside] = world.occupied[cells[inside, 0], cells[inside, 1]]
    return solid.reshape(xy.shape[:-1])


def render_scan(world: World, pose: np.ndarray, config: ScannerConfig,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One noisy scan from a (3,) pose ``(x, y, theta)``.

    Returns:
        (B, 2) end points in the base frame (x forward, y left) and (B,) bool returns; a beam
        without a return ends at ``max_range`` (its point carries free space only).
    """
    bearings = np.linspace(-np.pi, np.pi, config.beams, endpoint=False)
    step = world.resolution / 2.0
    distances = np.arange(step, config.max_range + step, step)  # (S,)
    heading = pose[2] + bearings
    direction = np.stack([np.cos(heading), np.sin(heading)], axis=1)  # (B, 2)
    solid = _solid(world, pose[:2] + direction[:, None, :] * distances[None, :, None])  # (B, S)
    returned = solid.any(axis=1)
    first = np.argmax(solid, axis=1)
    # Bisect between the last free sample and the first solid one: the surface to ~1 mm.
    low = np.where(first > 0, distances[np.maximum(first - 1, 0)], 0.0)
    high = distances[first]
    for _ in range(8):
        middle = 0.5 * (low + high)
        inside = _solid(world, pose[:2] + direction * middle[:, None])
        low, high = np.where(inside, low, middle), np.where(inside, middle, high)
    ranges = np.where(returned, 0.5 * (low + high), config.max_range)
    ranges = ranges + np.where(returned, rng.normal(0.0, config.range_sigma, config.beams), 0.0)
    returned &= rng.random(config.beams) >= config.dropout
    ranges = np.where(returned, ranges, config.max_range)
    points = np.stack([np.cos(bearings), np.sin(bearings)], axis=1) * ranges[:, None]
    return points, returned


def map_iou(world: World, occupancy: np.ndarray, origin: tuple[float, float],
            resolution: float) -> float:
    """IoU of the occupied cells of a map against the world, over the cells the map observed.

    Args:
        occupancy: (H, W) int8 in nav_msgs/OccupancyGrid terms (100 occupied, 0 free, -1
            unknown) of a map at ``origin`` and ``resolution``.

    The world is resampled to the map's cells (a map cell is occupied in the world when any
    of its sub-samples, two per world cell and side, falls in an occupied world cell);
    unknown map cells are left out.
    """
    rows, cols = np.indices(occupancy.shape)
    corner = np.stack([origin[0] + cols.ravel() * resolution,
                       origin[1] + rows.ravel() * resolution], axis=1)
    factor = 2 * max(1, int(round(resolution / world.resolution)))  # samples per side
    truth = np.zeros(occupancy.size, bool)
    height, width = world.occupied.shape
    for dy in range(factor):
        for dx in range(factor):
            offset = (np.array([dx, dy]) + 0.5) * (resolution / factor)
            cells = world.cells_of(corner + offset)
            inside = ((cells >= 0) & (cells < [height, width])).all(axis=1)
            truth[inside] |= world.occupied[cells[inside, 0], cells[inside, 1]]
    known = occupancy.ravel() >= 0
    predicted = occupancy.ravel() == 100
    intersection = np.count_nonzero(predicted & truth & known)
    union = np.count_nonzero((predicted | truth) & known)
    return intersection / union if union else 0.0

