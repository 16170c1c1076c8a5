"""Log-odds occupancy update in closed form, and ego grid contents."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kestrel_core.mapping.allocentric import ego_to_window, footprint
from kestrel_core.mapping.egocentric import (FREE, HEIGHT_MAX, HEIGHT_MEAN, HITS,
                                             METRIC_CHANNELS, EgoGridConfig, depth_to_points,
                                             points_to_ego_grid)
from kestrel_core.mapping.memory import MAP_HEIGHT_MEAN, MapMemory, MemoryConfig, build_conv_gru

EGO = EgoGridConfig(resolution=1.0, radius_cells=5, max_range=5.0, free_step=0.25)


def test_ego_grid_hits_free_and_heights(device):
    points = torch.tensor([[3.0, 0.0, 0.5], [3.1, 0.2, 1.5], [0.0, -2.0, 0.0]], device=device)
    grid = points_to_ego_grid(points, EGO)
    centre = EGO.radius_cells
    assert grid[HITS, centre, centre + 3] == 2 and grid[HITS, centre - 2, centre] == 1
    assert grid[HEIGHT_MAX, centre, centre + 3] == pytest.approx(1.5)
    assert grid[HEIGHT_MEAN, centre, centre + 3] == pytest.approx(1.0)
    # Cells strictly between the sensor and a hit are free; the hit cells are not.
    assert torch.all(grid[FREE, centre, centre + 1:centre + 3] > 0)
    assert grid[FREE, centre, centre + 3] == 0 and grid[FREE, centre - 2, centre] == 0
    assert int(torch.count_nonzero(grid[HITS])) == 2


def test_depth_image_back_projection(device):
    depth = torch.full((2, 3), float("nan"), device=device)
    depth[1, 2] = 4.0
    K = np.array([[2.0, 0, 1.0], [0, 2.0, 0.5], [0, 0, 1]])
    optical_to_base = np.array([[0, 0, 1, 0], [-1, 0, 0, 0], [0, -1, 0, 0.2], [0, 0, 0, 1.0]])
    points = depth_to_points(depth, K, optical_to_base)
    # Pixel (x=2, y=1): optical (4 (2-1)/2, 4 (1-0.5)/2, 4) = (2, 1, 4) -> base (4, -2, -0.8).
    assert torch.allclose(points.cpu(), torch.tensor([[4.0, -2.0, -0.8]]))


def test_log_odds_update_closed_form(device):
    config = MemoryConfig(resolution=1.0, hit_log_odds=0.9, free_log_odds=-0.3,
                          min_log_odds=-1.0, max_log_odds=2.0)
    memory = MapMemory.empty(config, (0.0, 0.0), 20, device=device)
    points = torch.tensor([[3.0, 0.0, 0.7]], device=device)
    ego = points_to_ego_grid(points, EGO)
    pose = torch.tensor([0.5, 0.5, 0.0])  # cell centres on cell centres: an exact warp
    counts = []
    for _ in range(4):
        memory.integrate(ego, pose)
        counts.append(memory.log_odds.clone())
    hit_row, hit_col = 10, 13  # map cell of world (3.5, 0.5) with origin (-10, -10)
    free_cell = (10, 11)
    expected_hit = [min(0.9 * n, 2.0) for n in range(1, 5)]
    expected_free = [max(-0.3 * n, -1.0) for n in range(1, 5)]
    for n in range(4):
        assert float(counts[n][hit_row, hit_col]) == pytest.approx(expected_hit[n])
        assert float(counts[n][free_cell]) == pytest.approx(expected_free[n])
    assert float(memory.grid[MAP_HEIGHT_MEAN, hit_row, hit_col]) == pytest.approx(0.7)
    # Never observed cells stay at 0 (P = 0.5).
    assert float(memory.log_odds[0, 0]) == 0.0
    assert int(torch.count_nonzero(memory.log_odds > 0)) == 1


def test_warp_is_exact_for_quarter_turns_and_differentiable():
    ego = torch.arange(2 * 7 * 7, dtype=torch.float32).reshape(2, 7, 7)
    window = footprint((0.0, 0.0), 3, (-3.5, -3.5), 1.0)
    pose = torch.tensor([0.0, 0.0, np.pi / 2], requires_grad=True)
    warped = ego_to_window(ego, pose, window, (-3.5, -3.5), 1.0)
    rows = slice(-window.row0, -window.row0 + 7)
    cols = slice(-window.col0, -window.col0 + 7)
    # A +90 degree turn maps ego (x, y) to world (-y, x), so world[r, c] = ego[6 - c, r]: with
    # rows growing along y that is torch.rot90 with k = -1.
    assert torch.allclose(warped[:, rows, cols], torch.rot90(ego, -1, dims=(1, 2)), atol=1e-4)
    weights = torch.linspace(0.0, 1.0, 25).reshape(5, 5)
    (warped[0, rows, cols][1:-1, 1:-1] * weights).sum().backward()
    assert pose.grad is not None and torch.isfinite(pose.grad).all() and pose.grad.abs().sum() > 0


@pytest.mark.parametrize("update", ["average", "gru"])
def test_feature_channels_running_average_or_gru(update):
    config = MemoryConfig(resolution=1.0, feature_update=update)
    cell = build_conv_gru(2, None, seed=3) if update == "gru" else None
    memory = MapMemory.empty(config, (0.0, 0.0), 20, feature_channels=2, feature_cell=cell)
    points = torch.tensor([[3.0, 0.0], [3.2, 0.1]])
    pose = torch.tensor([0.5, 0.5, 0.0])
    first = points_to_ego_grid(points, EGO, features=torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert torch.allclose(first[METRIC_CHANNELS:, 5, 8], torch.tensor([2.0, 3.0]))
    second = points_to_ego_grid(points, EGO, features=torch.tensor([[5.0, 6.0], [7.0, 8.0]]))
    with torch.inference_mode():
        memory.integrate(first, pose)
        memory.integrate(second, pose)
    features = memory.grid[METRIC_CHANNELS:].clone()
    if update == "average":  # mean of (2, 3) and (6, 7)
        assert torch.allclose(features[:, 10, 13], torch.tensor([4.0, 5.0]))
    else:  # the GRU state moved at the observed cell, in tanh's range
        assert torch.all(features[:, 10, 13] != 0) and torch.all(features.abs() <= 1.0)
    # Cells never hit keep an empty feature state, whichever the update.
    features[:, 10, 13] = 0.0
    assert int(torch.count_nonzero(features.abs() > 1e-6)) == 0
