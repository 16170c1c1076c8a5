"""neural_mapping's map files: what save_map writes, load_map reads back, and what it refuses."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from kestrel_core.mapping.io import occupancy_values
from kestrel_core.mapping.mapper import Mapper, MapperConfig
from kestrel_core.mapping.egocentric import EgoGridConfig
from kestrel_ros.mapping_files import MapFileError, map_file_paths, read_map_file, save_map_files

CONFIG = MapperConfig(ego=EgoGridConfig(radius_cells=20), initial_size=64, loop_closure=True)


@pytest.fixture(scope="module")
def mapper() -> Mapper:
    """A small map of a square room (walls 6 m away) seen from five poses, with places along the way."""
    side = np.linspace(-6.0, 6.0, 97)
    room = np.concatenate([np.column_stack([side, np.full_like(side, s)]) for s in (-6.0, 6.0)]
                          + [np.column_stack([np.full_like(side, s), side]) for s in (-6.0, 6.0)])
    mapper = Mapper(replace(CONFIG, topological=replace(CONFIG.topological, node_distance=0.5)))
    with torch.inference_mode():
        for x in np.arange(5) * 0.3:
            pose = np.array([x, 0.0, 0.0])
            local = (room - pose[:2]).astype(np.float32)
            mapper.step(torch.from_numpy(local), pose)
    return mapper


def test_paths_append_the_suffixes(tmp_path):
    assert map_file_paths(tmp_path / "site.v2") == [tmp_path / "site.v2.yaml", tmp_path / "site.v2.pgm",
                                                     tmp_path / "site.v2.npz"]


def test_both_files_load_back_to_the_saved_grid(mapper, tmp_path):
    paths = save_map_files(tmp_path / "new" / "room", mapper.memory, mapper.graph)
    assert all(path.is_file() for path in paths)
    saved = occupancy_values(mapper.memory.log_odds.numpy())
    assert (saved == 100).sum() > 50 and (saved == 0).sum() > 50
    from_yaml, no_graph = read_map_file(paths[0], CONFIG)
    np.testing.assert_array_equal(occupancy_values(from_yaml.log_odds.numpy()), saved)
    assert from_yaml.origin == pytest.approx(mapper.memory.origin) and len(no_graph) == 0
    from_state, graph = read_map_file(paths[2], CONFIG)
    assert torch.equal(from_state.grid, mapper.memory.grid) and from_state.origin == mapper.memory.origin
    assert len(graph) == len(mapper.graph) >= 2
    np.testing.assert_array_equal(graph.poses, mapper.graph.poses)


def test_unusable_files_are_refused_with_their_kind(mapper, tmp_path):
    paths = save_map_files(tmp_path / "room", mapper.memory, mapper.graph)
    with pytest.raises(FileNotFoundError):
        read_map_file(tmp_path / "missing.yaml", CONFIG)
    other = replace(CONFIG, ego=replace(CONFIG.ego, resolution=0.25),
                    memory=replace(CONFIG.memory, resolution=0.25))
    with pytest.raises(MapFileError, match="0.5 m cells") as error:
        read_map_file(paths[2], other)
    assert error.value.kind == "metadata"
    with pytest.raises(MapFileError) as error:
        read_map_file(paths[1], CONFIG)  # the .pgm alone
    assert error.value.kind == "metadata"
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a numpy archive")
    with pytest.raises(MapFileError) as error:
        read_map_file(broken, CONFIG)
    assert error.value.kind == "unreadable"
