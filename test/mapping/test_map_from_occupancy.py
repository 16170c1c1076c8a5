"""A map_server grid becomes a map memory (for localization against a saved map) that gives
the same trinary grid back."""

from __future__ import annotations

import numpy as np

from kestrel_core.mapping.io import load_map_yaml, memory_from_occupancy, occupancy_values, save_map_yaml
from kestrel_core.mapping.memory import LOG_ODDS, MemoryConfig


def test_a_map_server_pair_becomes_a_memory_that_gives_the_same_grid_back(tmp_path):
    values = np.full((7, 9), -1, np.int8)
    values[2:5, 1:8] = 0
    values[3, 4] = values[0, 0] = 100
    save_map_yaml(tmp_path / "m.yaml", values, (-1.5, 2.0), 0.25)
    loaded, origin, resolution = load_map_yaml(tmp_path / "m.yaml")
    memory = memory_from_occupancy(loaded, origin, MemoryConfig(resolution=resolution))
    assert memory.origin == (-1.5, 2.0) and memory.shape == (7, 9)
    np.testing.assert_array_equal(occupancy_values(memory.log_odds.numpy()), values)
    config = memory.config
    assert memory.grid[LOG_ODDS, 3, 4] == config.max_log_odds and memory.grid[LOG_ODDS, 2, 1] == config.min_log_odds
