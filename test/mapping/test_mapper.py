"""The mapping pipeline corrects drifting odometry: by localizing against its own map, and by
loop closure on a revisit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kestrel_core.mapping import se2
from kestrel_core.mapping.egocentric import EgoGridConfig
from kestrel_core.mapping.mapper import Mapper, MapperConfig
from kestrel_core.mapping.memory import MemoryConfig
from kestrel_core.mapping.topological import REVISIT, TopologicalConfig
from kestrel_tools.mapping_eval.odometry import DriftConfig, drifting_odometry
from kestrel_tools.mapping_eval.world import ScannerConfig, render_scan

from mapping_worlds import MAP_RESOLUTION, yard_loop, yard_world


def test_localization_keeps_the_pose_while_odometry_drifts(device):
    world, truth = yard_world(), yard_loop(48)
    odometry = drifting_odometry(truth, DriftConfig(bias_walk=2e-3, yaw_sigma=5e-3,
                                                    scale_error=0.03, seed=11))
    # This odometry turns ~0.3 deg of noise a step, far above the default motion prior.
    config = MapperConfig(ego=EgoGridConfig(resolution=MAP_RESOLUTION, radius_cells=60),
                          memory=MemoryConfig(resolution=MAP_RESOLUTION), initial_size=128,
                          motion_sigma=(0.1, 0.1, float(np.radians(1.0))),
                          motion_sigma_per_metre=(0.05, 0.05, float(np.radians(0.5))))
    mapper = Mapper(config, device)
    rng = np.random.default_rng(8)
    with torch.inference_mode():
        for pose, odom in zip(truth, odometry):
            points, returned = render_scan(world, pose, ScannerConfig(), rng)
            result = mapper.step(torch.tensor(points, dtype=torch.float32), odom,
                                 torch.as_tensor(returned))
    raw_error = np.linalg.norm(odometry[:, :2] - truth[:, :2], axis=1)
    error = np.linalg.norm(mapper.poses[:, :2] - truth[:, :2], axis=1)
    assert raw_error.max() > 1.5  # the drift is real: three cells and more
    assert error.max() < 0.5  # within a cell of the truth all the way round
    assert result.localized
    # map -> odom is the correction: composing it with the last odometry gives the estimate.
    assert np.allclose(se2.compose(mapper.map_from_odom, odometry[-1]), mapper.poses[-1])


def test_loop_closure_alone_pulls_a_drifted_lap_back():
    world = yard_world()
    lap = yard_loop(40)
    truth = np.vstack([lap, lap[:20]])  # one and a half laps: the second pass revisits
    odometry = drifting_odometry(truth, DriftConfig(bias_walk=2e-3, yaw_sigma=5e-3,
                                                    scale_error=0.03, seed=11))
    config = MapperConfig(ego=EgoGridConfig(resolution=MAP_RESOLUTION, radius_cells=60),
                          memory=MemoryConfig(resolution=MAP_RESOLUTION), initial_size=128,
                          localize=False, loop_closure=True,
                          topological=TopologicalConfig(node_distance=6.0, recent_nodes=4))
    mapper = Mapper(config)
    rng = np.random.default_rng(8)
    closures = 0
    with torch.inference_mode():
        for pose, odom in zip(truth, odometry):
            points, returned = render_scan(world, pose, ScannerConfig(), rng)
            closures += mapper.step(torch.tensor(points, dtype=torch.float32), odom,
                                    torch.as_tensor(returned)).loop_closed
    assert closures >= 1
    assert int((mapper.graph.kinds == REVISIT).sum()) >= 1
    raw_error = np.linalg.norm(odometry[-10:, :2] - truth[-10:, :2], axis=1).mean()
    error = np.linalg.norm(mapper.poses[-10:, :2] - truth[-10:, :2], axis=1).mean()
    assert raw_error > 1.5
    assert error < 0.5 * raw_error


def test_localization_with_perfect_odometry_does_not_wander():
    """Three laps of the yard with exact odometry: fused with the motion prior, localization
    stays within half a cell and one rotation bin of the truth at every step."""
    world, truth = yard_world(), np.vstack([yard_loop(48)] * 3)
    config = MapperConfig(ego=EgoGridConfig(resolution=MAP_RESOLUTION, radius_cells=60),
                          memory=MemoryConfig(resolution=MAP_RESOLUTION), initial_size=128)
    mapper = Mapper(config)
    rng = np.random.default_rng(8)
    localized = 0
    with torch.inference_mode():
        for pose in truth:
            points, returned = render_scan(world, pose, ScannerConfig(), rng)
            localized += mapper.step(torch.tensor(points, dtype=torch.float32), pose,
                                     torch.as_tensor(returned)).localized
    error = mapper.poses - truth
    assert np.abs(error[:, :2]).max() <= 0.5 * MAP_RESOLUTION
    assert np.abs(se2.wrap_angle(error[:, 2])).max() <= config.localization.rotation_step
    assert localized >= 0.95 * len(truth)  # corrected, not merely kept at the prior



@pytest.mark.parametrize("bad", [{"motion_sigma": (0.0, 0.1, 0.01)},
                                 {"motion_sigma_per_metre": (0.05, -0.05, 0.01)}])
def test_motion_prior_settings_are_checked(bad):
    with pytest.raises(ValueError, match="motion_sigma"):
        MapperConfig(**bad)
