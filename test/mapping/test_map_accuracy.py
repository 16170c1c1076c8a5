"""With perfect odometry the map matches the known world; the memory grows without loss."""

from __future__ import annotations

import numpy as np
import torch

from kestrel_core.mapping.egocentric import EgoGridConfig, points_to_ego_grid
from kestrel_core.mapping.io import occupancy_values
from kestrel_core.mapping.memory import MapMemory, MemoryConfig
from kestrel_tools.mapping_eval.world import ScannerConfig, map_iou, render_scan

from mapping_worlds import MAP_RESOLUTION, yard_loop, yard_world


def test_perfect_odometry_map_iou_at_least_0_9(device):
    world = yard_world()
    ego_config = EgoGridConfig(resolution=MAP_RESOLUTION, radius_cells=60)
    memory = MapMemory.empty(MemoryConfig(resolution=MAP_RESOLUTION), (0.0, 0.0), 64,
                             device=device)
    rng = np.random.default_rng(1)
    scanner = ScannerConfig(beams=720, range_sigma=0.02)
    for pose in yard_loop():
        points, returned = render_scan(world, pose, scanner, rng)
        ego = points_to_ego_grid(torch.tensor(points, dtype=torch.float32, device=device),
                                 ego_config, hit=torch.as_tensor(returned, device=device))
        memory.integrate(ego, torch.tensor(pose))
    values = occupancy_values(memory.log_odds.cpu().numpy())
    assert map_iou(world, values, memory.origin, MAP_RESOLUTION) >= 0.9
    # The map grew (64 cells = 32 m cannot hold a 40 m yard) and its corner stays on whole metres.
    assert memory.shape[1] > 64
    assert np.allclose(np.mod(memory.origin, 1.0), 0.0)


def test_growth_keeps_content_at_its_world_position():
    config = MemoryConfig(resolution=0.5, grow_block=16)
    memory = MapMemory.empty(config, (0.0, 0.0), 32)
    rng = np.random.default_rng(0)
    memory.grid[:] = torch.from_numpy(rng.normal(size=tuple(memory.grid.shape)).astype(np.float32))
    before, origin = memory.grid.clone(), memory.origin
    ego = points_to_ego_grid(torch.tensor([[3.0, 0.0]]), EgoGridConfig(resolution=0.5,
                                                                       radius_cells=10))
    window = memory.integrate(ego, torch.tensor([-20.0, 15.0, 0.3]))  # far outside, up-left
    assert memory.shape[0] > 32 and memory.shape[1] > 32
    shift_col = round((origin[0] - memory.origin[0]) / 0.5)
    shift_row = round((origin[1] - memory.origin[1]) / 0.5)
    assert shift_col % 16 == 0 and shift_row == 0  # whole blocks, only where needed
    old = memory.grid[:, shift_row:shift_row + 32, shift_col:shift_col + 32]
    assert torch.equal(old, before)
    assert window.row0 >= 0 and window.col0 >= 0
    assert window.row0 + window.height <= memory.shape[0]
    # Everything outside the old area and the window is still unknown.
    outside = torch.ones(memory.shape, dtype=torch.bool)
    outside[shift_row:shift_row + 32, shift_col:shift_col + 32] = False
    rows, cols = window.slices()
    outside[rows, cols] = False
    assert torch.count_nonzero(memory.grid[:, outside]) == 0
