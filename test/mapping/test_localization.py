"""MapNet localization recovers a planted offset of a real observation.

The observation is rendered from the street world at a real KITTI 00 pose; the map is
built from the poses before and after it with perfect odometry.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kestrel_core.mapping.egocentric import EgoGridConfig, points_to_ego_grid
from kestrel_core.mapping.localization import LocalizationConfig, localize
from kestrel_core.mapping.memory import MapMemory, MemoryConfig
from kestrel_tools.mapping_eval.world import ScannerConfig, render_scan

from mapping_worlds import MAP_RESOLUTION, kitti_street

EGO = EgoGridConfig(resolution=MAP_RESOLUTION, radius_cells=60)
SEARCH = LocalizationConfig(search_radius_cells=6, rotation_bins=9,
                            rotation_step=float(np.radians(1.0)))


@pytest.fixture(scope="module")
def street_map():
    world, truth = kitti_street(poses=40)
    rng = np.random.default_rng(5)
    memory = MapMemory.empty(MemoryConfig(resolution=MAP_RESOLUTION), tuple(truth[0, :2]), 128)
    for index, pose in enumerate(truth):
        if index != 20:  # pose 20 is the one to localize; its own scan stays out of the map
            points, returned = render_scan(world, pose, ScannerConfig(), rng)
            memory.integrate(points_to_ego_grid(torch.tensor(points, dtype=torch.float32), EGO,
                                                hit=torch.as_tensor(returned)),
                             torch.tensor(pose))
    points, returned = render_scan(world, truth[20], ScannerConfig(), rng)
    return memory, truth[20], torch.tensor(points, dtype=torch.float32), torch.as_tensor(returned)


@pytest.mark.parametrize("cells_x, cells_y, bins", [(4, -3, 3), (-5, 2, -2), (0, 6, 4)])
def test_recovers_offset_and_rotation_within_a_cell_and_a_bin(street_map, device, cells_x,
                                                              cells_y, bins):
    memory, truth, points, returned = street_map
    ego = points_to_ego_grid(points.to(device), EGO, hit=returned.to(device))
    prior = truth + np.array([cells_x * MAP_RESOLUTION, cells_y * MAP_RESOLUTION,
                              bins * SEARCH.rotation_step])
    estimate = localize(ego, memory.occupancy_signal().to(device), memory.origin, MAP_RESOLUTION,
                        prior, SEARCH)
    error = estimate.pose - truth
    assert estimate.accepted
    assert np.all(np.abs(error[:2]) <= MAP_RESOLUTION)
    assert abs(error[2]) <= SEARCH.rotation_step
    # The distribution is normalised and its covariance is a proper one.
    assert float(estimate.distribution.sum()) == pytest.approx(1.0, abs=1e-4)
    assert np.all(np.linalg.eigvalsh(estimate.covariance) > 0)


def test_rejects_an_unmapped_place(street_map):
    memory, truth, points, returned = street_map
    ego = points_to_ego_grid(points, EGO, hit=returned)
    far_away = truth + np.array([500.0, 500.0, 0.0])
    estimate = localize(ego, memory.occupancy_signal(), memory.origin, MAP_RESOLUTION, far_away,
                        SEARCH)
    assert not estimate.accepted


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_subcell_offset_recovered_without_bias_either_way(street_map, sign):
    """The sub-cell and sub-bin refinement has no bias of its own: in a map observed from both
    sides of the pose, a prior a fraction of a cell and a bin off is pulled back to the truth
    from either side alike (the drift of issue 7 comes from maps seen from behind only)."""
    memory, truth, points, returned = street_map
    ego = points_to_ego_grid(points, EGO, hit=returned)
    offset = sign * np.array([0.3 * MAP_RESOLUTION, -0.3 * MAP_RESOLUTION,
                              0.3 * SEARCH.rotation_step])
    estimate = localize(ego, memory.occupancy_signal(), memory.origin, MAP_RESOLUTION,
                        truth + offset, SEARCH)
    error = estimate.pose - truth
    assert np.all(np.abs(error[:2]) < 0.25 * MAP_RESOLUTION)
    assert abs(error[2]) < 0.5 * SEARCH.rotation_step


def test_motion_prior_holds_the_estimate_where_the_map_says_nothing(street_map):
    """On an empty reference the correlation is flat: with a motion prior the mode is the
    prior itself, and the distribution is the prior's Gaussian (wider in x than in y)."""
    _, truth, points, returned = street_map
    ego = points_to_ego_grid(points, EGO, hit=returned)
    empty = torch.zeros(64, 64)
    origin = (float(truth[0]) - 16.0, float(truth[1]) - 16.0)
    sigma = np.array([1.0, 0.5, SEARCH.rotation_step])
    estimate = localize(ego, empty, origin, MAP_RESOLUTION, truth, SEARCH, prior_sigma=sigma)
    assert np.allclose(estimate.pose, truth)
    assert not estimate.accepted
    spread = np.sqrt(np.diag(estimate.covariance))
    assert spread[0] > 1.5 * spread[1]


def test_motion_prior_outweighs_a_weak_pull(street_map):
    """A tight prior keeps the estimate at the prior even where the map pulls it a cell away;
    a loose one lets the map win."""
    memory, truth, points, returned = street_map
    ego = points_to_ego_grid(points, EGO, hit=returned)
    prior = truth + np.array([2 * MAP_RESOLUTION, 0.0, 0.0])
    tight = localize(ego, memory.occupancy_signal(), memory.origin, MAP_RESOLUTION, prior, SEARCH,
                     prior_sigma=np.array([0.01, 0.01, 1e-4]))
    loose = localize(ego, memory.occupancy_signal(), memory.origin, MAP_RESOLUTION, prior, SEARCH,
                     prior_sigma=np.array([10.0, 10.0, 1.0]))
    assert np.allclose(tight.pose, prior, atol=0.01 * MAP_RESOLUTION)
    assert np.all(np.abs(loose.pose - truth)[:2] <= 0.5 * MAP_RESOLUTION)
