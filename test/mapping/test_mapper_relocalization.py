"""Mapper.step's per-step overrides: a prior and a wide search window re-localize after an
odometry jump, and ``update_map=False`` localizes against a map it leaves untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kestrel_core.mapping import se2
from kestrel_core.mapping.egocentric import EgoGridConfig
from kestrel_core.mapping.localization import LocalizationConfig
from kestrel_core.mapping.mapper import Mapper, MapperConfig
from kestrel_core.mapping.memory import MemoryConfig
from kestrel_tools.mapping_eval.world import ScannerConfig, render_scan

from mapping_worlds import MAP_RESOLUTION, yard_loop, yard_world

CONFIG = MapperConfig(ego=EgoGridConfig(resolution=MAP_RESOLUTION, radius_cells=50, max_range=25.0),
                      memory=MemoryConfig(resolution=MAP_RESOLUTION), initial_size=128)
WIDE = LocalizationConfig(search_radius_cells=16, rotation_bins=15, rotation_step=float(np.radians(2.0)))


def scans(poses: np.ndarray, seed: int = 3) -> list[tuple[torch.Tensor, torch.Tensor]]:
    rng = np.random.default_rng(seed)
    world = yard_world()
    return [tuple(torch.as_tensor(a) for a in render_scan(world, pose, ScannerConfig(), rng))
            for pose in poses]


def test_a_prior_and_a_wide_window_absorb_an_odometry_jump_into_map_to_odom():
    truth = yard_loop(40)[:12]
    odometry = truth.copy()
    jump = np.array([4.0, -2.5, 0.15])  # from step 8 on, odometry lives in a shifted frame
    odometry[8:] = se2.compose(jump, truth[8:])
    mapper = Mapper(CONFIG)
    with torch.inference_mode():
        for k, ((points, hit), odom) in enumerate(zip(scans(truth), odometry)):
            if k == 8:  # re-localize around the last estimate, as the node does on a jump
                result = mapper.step(points.float(), odom, hit, prior=mapper.poses[-1],
                                     localization=WIDE)
            else:
                result = mapper.step(points.float(), odom, hit)
    assert result.localized
    assert np.abs(mapper.poses[:, :2] - truth[:, :2]).max() < 0.3
    assert np.abs(se2.wrap_angle(mapper.poses[:, 2] - truth[:, 2])).max() < np.radians(1.5)
    # map -> odom is the inverse of the injected frame shift
    np.testing.assert_allclose(mapper.map_from_odom, se2.inverse(jump), atol=0.3)


def test_update_map_false_localizes_without_changing_the_map():
    truth = yard_loop(40)
    mapper = Mapper(CONFIG)
    observations = scans(truth[:10])
    with torch.inference_mode():
        for (points, hit), pose in zip(observations, truth[:10]):
            mapper.step(points.float(), pose, hit)
        before = mapper.memory.grid.clone()
        offset = np.array([0.8, -0.6, np.radians(3.0)])  # the odometry is off by this
        points, hit = observations[5]
        result = mapper.step(points.float(), se2.compose(offset, truth[5]), hit,
                             prior=se2.compose(offset, truth[5]), localization=WIDE,
                             update_map=False)
    assert torch.equal(mapper.memory.grid, before)
    assert result.localized
    np.testing.assert_allclose(result.pose[:2], truth[5, :2], atol=0.3)


def test_update_map_false_is_refused_with_loop_closure():
    mapper = Mapper(MapperConfig(loop_closure=True))
    with pytest.raises(ValueError, match="loop closure"):
        mapper.step(torch.zeros(4, 2), np.zeros(3), update_map=False)

