"""The files behind neural_mapping's ``save_map`` and ``load_map`` services (no ROS types here).

Saving writes three files next to each other: ``<prefix>.yaml`` + ``<prefix>.pgm`` (the trinary
pair nav2's map_server reads) and ``<prefix>.npz`` (Kestrel's full state: every map channel,
origin, memory config and the place graph). Loading takes either kind back: a map_server
``.yaml`` (trinary cells become the most certain log-odds, no place graph) or a Kestrel
``.npz``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
import yaml

from kestrel_core.mapping.io import (load_map_yaml, load_state, memory_from_occupancy,
                                     occupancy_values, save_map_yaml, save_state)
from kestrel_core.mapping.mapper import MapperConfig
from kestrel_core.mapping.memory import MapMemory
from kestrel_core.mapping.topological import TopologicalGraph

YAML_SUFFIXES = (".yaml", ".yml")
STATE_SUFFIX = ".npz"


class MapFileError(ValueError):
    """A map file that cannot be used: ``unreadable`` content or mismatched ``metadata``."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def map_file_paths(prefix: Path) -> list[Path]:
    """``[<prefix>.yaml, <prefix>.pgm, <prefix>.npz]`` (the suffixes are appended, not swapped)."""
    prefix = Path(prefix)
    return [prefix.with_name(prefix.name + suffix) for suffix in (".yaml", ".pgm", STATE_SUFFIX)]


def save_map_files(prefix: Path, memory: MapMemory, graph: TopologicalGraph) -> list[Path]:
    """Write the three map files of ``prefix`` (creating its folder); return their paths.

    Raises:
        OSError: a folder or file cannot be written.
    """
    paths = map_file_paths(prefix)
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    save_map_yaml(paths[0], occupancy_values(memory.log_odds.detach().cpu().numpy()),
                  memory.origin, memory.config.resolution)
    save_state(paths[2], memory, graph)
    return paths


def read_map_file(path: Path, config: MapperConfig,
                  device: str | torch.device = "cpu") -> tuple[MapMemory, TopologicalGraph]:
    """The map (and place graph, from a state file) stored at ``path``.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        MapFileError: ``metadata`` (another suffix, or a resolution other than the config's)
            or ``unreadable`` (the content cannot be parsed).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix not in YAML_SUFFIXES + (STATE_SUFFIX,):
        raise MapFileError("metadata", f"{path} is neither a map_server .yaml nor a Kestrel .npz")
    graph = TopologicalGraph(config.topological, config.memory.resolution)
    try:
        if path.suffix in YAML_SUFFIXES:
            values, origin, resolution = load_map_yaml(path)
            memory = memory_from_occupancy(values, origin, replace(config.memory, resolution=resolution),
                                           device)
        else:
            memory = load_state(path, graph, device)
    except (OSError, KeyError, ValueError, TypeError, yaml.YAMLError) as err:
        raise MapFileError("unreadable", f"cannot read {path}: {err}") from err
    if abs(memory.config.resolution - config.memory.resolution) > 1e-9:
        raise MapFileError("metadata", f"{path} has {memory.config.resolution} m cells, the mapper "
                                       f"uses {config.memory.resolution} m")
    return memory, graph
