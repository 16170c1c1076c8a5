"""Known worlds for the mapping tests: a walled yard with boxes, and the KITTI 00 street world."""

from __future__ import annotations

import numpy as np

from kestrel_tools.mapping_eval.odometry import planar_kitti
from kestrel_tools.mapping_eval.world import StreetWorldConfig, World, street_world
from kestrel_tools.paths import data_dir

MAP_RESOLUTION = 0.5


def yard_world() -> World:
    """A 40 x 30 m yard: 1 m walls and five boxes, 0.5 m cells.

    The world's cell edges sit at the centres of the cells of a 0.5 m map whose origin is on
    whole metres, so every surface lies mid-cell in the map (no cell straddles a surface).
    """
    res = MAP_RESOLUTION
    occupied = np.zeros((62, 82), bool)
    occupied[:2, :] = occupied[-2:, :] = occupied[:, :2] = occupied[:, -2:] = True
    for row, col, height, width in [(10, 12, 4, 6), (40, 20, 6, 3), (20, 50, 3, 8),
                                    (45, 60, 5, 5), (28, 30, 2, 2)]:
        occupied[row:row + height, col:col + width] = True
    return World(occupied, (-20.25, -15.25), res)


def yard_loop(count: int = 40) -> np.ndarray:
    """(count, 3) poses on an ellipse inside the yard, heading along it."""
    angle = np.linspace(0.0, 2.0 * np.pi, count, endpoint=False)
    xy = np.column_stack([12.0 * np.cos(angle) + 0.3, 7.0 * np.sin(angle) - 0.2])
    heading = np.arctan2(7.0 * np.cos(angle), -12.0 * np.sin(angle))
    return np.column_stack([xy, heading])


def kitti_street(poses: int = 80, every: int = 6) -> tuple[World, np.ndarray]:
    """The street world around the first ``poses`` of KITTI 00 (every ``every``-th frame)."""
    _, truth = planar_kitti(data_dir() / "trajectories" / "KITTI_00_gt.txt", every)
    truth = truth[:poses]
    return street_world(truth[:, :2], StreetWorldConfig(seed=3)), truth
