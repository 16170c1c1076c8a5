"""Map files: the full state round-trips bit for bit; the map_server pair keeps the grid."""

from __future__ import annotations

import numpy as np
import torch
import yaml

from kestrel_core.mapping.egocentric import EgoGridConfig, points_to_ego_grid
from kestrel_core.mapping.io import (load_map_yaml, load_state, occupancy_values,
                                     save_map_yaml, save_state)
from kestrel_core.mapping.memory import MapMemory, MemoryConfig
from kestrel_core.mapping.topological import TopologicalConfig, TopologicalGraph


def _filled_memory() -> tuple[MapMemory, TopologicalGraph]:
    rng = np.random.default_rng(4)
    config = MemoryConfig(resolution=0.25, hit_log_odds=0.7, grow_block=8)
    memory = MapMemory.empty(config, (1.3, -2.1), 40, feature_channels=3)
    memory.grid[:] = torch.from_numpy(rng.normal(size=tuple(memory.grid.shape)).astype(np.float32))
    graph = TopologicalGraph(TopologicalConfig(), 0.25)
    ego = points_to_ego_grid(torch.from_numpy(rng.uniform(-3, 3, (50, 2))).float(),
                             EgoGridConfig(resolution=0.25, radius_cells=12))
    for step in range(3):
        graph.add_node(rng.normal(size=3), torch.from_numpy(rng.normal(size=8)).float(), ego, step)
    return memory, graph


def test_full_state_round_trip_is_exact(tmp_path):
    memory, graph = _filled_memory()
    save_state(tmp_path / "state.npz", memory, graph)
    loaded_graph = TopologicalGraph(TopologicalConfig(), 0.25)
    loaded = load_state(tmp_path / "state.npz", loaded_graph)
    assert torch.equal(loaded.grid, memory.grid)
    assert loaded.origin == memory.origin
    assert loaded.config == memory.config
    for name in ("poses", "embeddings", "steps", "edges", "measurements", "kinds"):
        assert np.array_equal(getattr(loaded_graph, name), getattr(graph, name)), name
    assert all(torch.equal(a, b) for a, b in zip(loaded_graph.observations, graph.observations))


def test_map_server_pair_round_trip(tmp_path):
    memory, _ = _filled_memory()
    values = occupancy_values(memory.log_odds.numpy())
    assert set(np.unique(values)) == {-1, 0, 100}
    save_map_yaml(tmp_path / "map.yaml", values, memory.origin, 0.25)
    description = yaml.safe_load((tmp_path / "map.yaml").read_text())
    assert description["image"] == "map.pgm" and description["mode"] == "trinary"
    assert description["origin"] == [memory.origin[0], memory.origin[1], 0.0]
    loaded, origin, resolution = load_map_yaml(tmp_path / "map.yaml")
    assert np.array_equal(loaded, values)
    assert origin == memory.origin and resolution == 0.25
    # map_server's image has y up: the PGM's first row is the map's last one.
    header = (tmp_path / "map.pgm").read_bytes()
    assert header.startswith(b"P5")


def test_occupancy_thresholds_follow_map_server():
    log_odds = np.log(np.array([0.9, 0.66, 0.64, 0.5, 0.2, 0.19]) / (1 - np.array(
        [0.9, 0.66, 0.64, 0.5, 0.2, 0.19])))
    assert occupancy_values(log_odds).tolist() == [100, 100, -1, -1, -1, 0]
