"""Map channels to colours: black marks exactly the unobserved cells, and cells with equal
channels get equal colours while different kinds of cell get different ones."""

from __future__ import annotations

import numpy as np

from kestrel_core.mapping.colouring import feature_colours
from kestrel_core.mapping.memory import LOG_ODDS, MAP_HEIGHT_MAX, WEIGHT, MapMemory, MemoryConfig


def test_free_occupied_and_unknown_cells_are_told_apart():
    memory = MapMemory.empty(MemoryConfig(), (0.0, 0.0), 12)
    grid = memory.grid
    grid[LOG_ODDS, 2:10, 2:10] = -2.0  # free room
    grid[LOG_ODDS, 2:10, 2] = 3.0  # a wall, 1.5 m high
    grid[WEIGHT, 2:10, 2] = 4.0
    grid[MAP_HEIGHT_MAX, 2:10, 2] = 1.5
    grid[LOG_ODDS, 5, 6] = 3.0  # a low box
    grid[WEIGHT, 5, 6] = 2.0
    grid[MAP_HEIGHT_MAX, 5, 6] = 0.4
    image = feature_colours(memory)
    assert image.shape == (12, 12, 3) and image.dtype == np.uint8
    observed = (grid[LOG_ODDS] != 0).numpy()
    np.testing.assert_array_equal(image.any(axis=2), observed)
    assert (image[observed] >= 1).all()
    wall, free, box = image[3, 2], image[3, 5], image[5, 6]
    assert (image[2:10, 2] == wall).all() and (image[6:10, 4:10] == free).all()
    assert len({tuple(wall), tuple(free), tuple(box)}) == 3


def test_an_empty_map_is_black():
    memory = MapMemory.empty(MemoryConfig(), (0.0, 0.0), 8)
    assert not feature_colours(memory).any()
