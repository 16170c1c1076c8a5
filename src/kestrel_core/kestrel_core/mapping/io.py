"""Map files: the map_server PGM + YAML pair, and Kestrel's full state as ``.npz``.

The PGM + YAML pair is what nav2's map_server loads (``mode: trinary``): occupied cells are
black (0), free cells 254, unknown 205; the image's top row is the map's highest y. It keeps
only the trinary grid. The ``.npz`` keeps every float channel, the map's origin and config,
and the place graph, bit for bit.
"""

from __future__ import annotations

from dataclasses import asdict, fields
import json
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml

from kestrel_core.mapping.egocentric import METRIC_CHANNELS
from kestrel_core.mapping.memory import LOG_ODDS, WEIGHT, MapMemory, MemoryConfig
from kestrel_core.mapping.topological import TopologicalGraph

OCCUPIED, FREE, UNKNOWN = 100, 0, -1
_PGM_OCCUPIED, _PGM_FREE, _PGM_UNKNOWN = 0, 254, 205


def occupancy_values(log_odds: np.ndarray, occupied_thresh: float = 0.65,
                     free_thresh: float = 0.196) -> np.ndarray:
    """(H, W) int8 nav_msgs/OccupancyGrid values (100, 0, -1) of (H, W) log-odds."""
    probability = 1.0 / (1.0 + np.exp(-np.asarray(log_odds, np.float64)))
    values = np.full(probability.shape, UNKNOWN, np.int8)
    values[probability > occupied_thresh] = OCCUPIED
    values[probability < free_thresh] = FREE
    return values


def save_map_yaml(yaml_path: Path, values: np.ndarray, origin: tuple[float, float],
                  resolution: float) -> None:
    """Write ``<name>.yaml`` and ``<name>.pgm`` from (H, W) int8 OccupancyGrid values."""
    yaml_path = Path(yaml_path)
    image = np.full(values.shape, _PGM_UNKNOWN, np.uint8)
    image[values == OCCUPIED] = _PGM_OCCUPIED
    image[values == FREE] = _PGM_FREE
    pgm_path = yaml_path.with_suffix(".pgm")
    if not cv2.imwrite(str(pgm_path), image[::-1]):
        raise OSError(f"cannot write {pgm_path}")
    description = {"image": pgm_path.name, "mode": "trinary", "resolution": float(resolution),
                   "origin": [float(origin[0]), float(origin[1]), 0.0], "negate": 0,
                   "occupied_thresh": 0.65, "free_thresh": 0.196}
    yaml_path.write_text(yaml.safe_dump(description, sort_keys=False))


def load_map_yaml(yaml_path: Path) -> tuple[np.ndarray, tuple[float, float], float]:
    """Read a map_server pair: (H, W) int8 values, origin (x0, y0) and resolution.

    Trinary interpretation with the file's thresholds: ``p = (255 - pixel) / 255`` (or
    ``pixel / 255`` when ``negate``), occupied above ``occupied_thresh``, free below
    ``free_thresh``.
    """
    yaml_path = Path(yaml_path)
    description = yaml.safe_load(yaml_path.read_text())
    pgm_path = yaml_path.parent / description["image"]
    image = cv2.imread(str(pgm_path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise OSError(f"cannot read {pgm_path}")
    pixel = image[::-1].astype(np.float64)
    probability = pixel / 255.0 if description.get("negate", 0) else (255.0 - pixel) / 255.0
    values = np.full(image.shape, UNKNOWN, np.int8)
    values[probability > description["occupied_thresh"]] = OCCUPIED
    values[probability < description["free_thresh"]] = FREE
    origin = description["origin"]
    return values, (float(origin[0]), float(origin[1])), float(description["resolution"])


def memory_from_occupancy(values: np.ndarray, origin: tuple[float, float], config: MemoryConfig,
                          device: str | torch.device = "cpu") -> MapMemory:
    """A map memory from (H, W) int8 OccupancyGrid values (e.g. ``load_map_yaml``'s).

    Occupied cells get ``config.max_log_odds``, free cells ``config.min_log_odds`` (the
    most certain values the memory keeps), unknown cells 0; heights are unknown (0), and a
    cell's hit weight is 1 where occupied. ``occupancy_values`` of the result gives
    ``values`` back.
    """
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"values must be (H, W), got {values.shape}")
    log_odds = np.zeros(values.shape, np.float32)
    log_odds[values == OCCUPIED] = config.max_log_odds
    log_odds[values == FREE] = config.min_log_odds
    grid = torch.zeros((METRIC_CHANNELS,) + values.shape, dtype=torch.float32)
    grid[LOG_ODDS] = torch.from_numpy(log_odds)
    grid[WEIGHT] = torch.from_numpy((values == OCCUPIED).astype(np.float32))
    return MapMemory(config, grid.to(device), origin)


def save_state(path: Path, memory: MapMemory, graph: TopologicalGraph | None = None) -> None:
    """Write the full mapping state (map channels, origin, config, place graph) to ``.npz``."""
    arrays: dict[str, np.ndarray] = {
        "grid": memory.grid.detach().cpu().numpy(),
        "origin": np.asarray(memory.origin, np.float64),
        "memory_config": np.array(json.dumps(asdict(memory.config))),
    }
    if graph is not None:
        arrays.update({
            "graph_poses": graph.poses, "graph_embeddings": graph.embeddings,
            "graph_steps": graph.steps, "graph_edges": graph.edges,
            "graph_measurements": graph.measurements, "graph_kinds": graph.kinds,
            "graph_observations": (torch.stack(graph.observations).cpu().numpy()
                                   if graph.observations else np.zeros((0, 2, 1, 1), np.float32)),
        })
    np.savez(Path(path), **arrays)


def load_state(path: Path, graph: TopologicalGraph | None = None,
               device: str | torch.device = "cpu") -> MapMemory:
    """Read ``save_state``'s file; fill ``graph`` in place when given (its config is kept)."""
    with np.load(Path(path)) as data:
        names = {f.name for f in fields(MemoryConfig)}
        settings = json.loads(str(data["memory_config"]))
        config = MemoryConfig(**{k: v for k, v in settings.items() if k in names})
        memory = MapMemory(config, torch.from_numpy(data["grid"]).to(device),
                           tuple(data["origin"]))
        if graph is not None and "graph_poses" in data:
            graph.poses = data["graph_poses"]
            graph.embeddings = data["graph_embeddings"]
            graph.steps = data["graph_steps"]
            graph.edges = data["graph_edges"]
            graph.measurements = data["graph_measurements"]
            graph.kinds = data["graph_kinds"]
            graph.observations = [torch.from_numpy(o).to(device)
                                  for o in data["graph_observations"]]
    return memory
