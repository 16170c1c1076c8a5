"""The SGM pipeline on synthetic scenes with known answers, its checks and its inputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from stereo_scenes import layered_scene
from kestrel_core.stereo import (
    SGMConfig,
    StereoResult,
    Workspace,
    compute_disparity,
    compute_matching_cost,
    disparity_from_cost_volume,
)
from kestrel_core.stereo.refinement import parabola_offset

NO_FILTERS = dict(lr_check=False, uniqueness_ratio=0.0, speckle_window_size=0)


def _as_input(image: np.ndarray, kind: str):
    """The same grey image as uint8, uint16 (full range), float in [0, 1], RGB, or torch."""
    if kind == "uint8":
        return image
    if kind == "uint16":
        return image.astype(np.uint16) * 257
    if kind == "float32":
        return image.astype(np.float32) / 255.0
    if kind == "rgb":
        return np.repeat(image[..., None], 3, axis=2)
    if kind == "torch":
        return torch.from_numpy(image)
    raise AssertionError(kind)


# --------------------------------------------------------------------- closed form
@pytest.mark.parametrize("cost", ["ad_gradient", "census"])
@pytest.mark.parametrize("num_paths", [4, 8])
def test_constant_disparity_is_recovered(cost, num_paths, device):
    scene = layered_scene(background=9, seed=1)
    config = SGMConfig(max_disparity=24, cost=cost, num_paths=num_paths)
    result = compute_disparity(scene.left, scene.right, config, device)
    assert isinstance(result, StereoResult)
    disparity = result.disparity.cpu().numpy()
    assert disparity.shape == scene.left.shape and disparity.dtype == np.float32
    interior = disparity[4:-4, 16:-4]
    assert np.isfinite(interior).all()
    assert np.abs(interior - 9).max() < 0.5


@pytest.mark.parametrize("kind", ["uint8", "uint16", "float32", "rgb", "torch"])
def test_piecewise_disparity_and_input_types(kind, device):
    scene = layered_scene(background=4, foreground=15, columns=(44, 80), seed=2)
    config = SGMConfig(max_disparity=32, **NO_FILTERS)
    result = compute_disparity(_as_input(scene.left, kind), _as_input(scene.right, kind), config, device)
    disparity = result.disparity.cpu().numpy()
    truth = scene.disparity
    # away from the image border and +-3 px around both foreground edges and occlusions
    mask = np.zeros(truth.shape, dtype=bool)
    mask[4:-4, 20:-4] = True
    for edge in (44 - 11, 44, 80):
        mask[:, max(0, edge - 3):edge + 4] = False
    mask &= ~scene.occluded
    assert np.abs(disparity[mask] - truth[mask]).max() < 0.5
    # every input type is converted to the same grey levels, hence the same result
    reference = compute_disparity(scene.left, scene.right, config, device).disparity
    torch.testing.assert_close(result.disparity, reference, equal_nan=True)


def test_negative_and_offset_disparity_range():
    scene = layered_scene(background=6, seed=3)
    # moving the right image 10 columns to the right turns disparity 6 into -4
    right = np.roll(scene.right, 10, axis=1)
    config = SGMConfig(max_disparity=16, min_disparity=-8, **NO_FILTERS)
    disparity = compute_disparity(scene.left, right, config, "cpu").disparity.numpy()
    interior = disparity[4:-4, 8:-16]
    assert np.abs(interior - (-4)).max() < 0.5


# ------------------------------------------------------------------ sub-pixel
def test_parabola_vertex_is_exact_for_a_parabola():
    true = torch.tensor([-0.4, -0.1, 0.0, 0.25, 0.49])
    samples = [(x - true) ** 2 * 3.0 + 7.0 for x in (-1.0, 0.0, 1.0)]
    torch.testing.assert_close(parabola_offset(*samples), true)
    # flat or non-convex neighbourhoods, and a missing neighbour, give no offset
    flat = torch.ones(3)
    assert torch.equal(parabola_offset(flat, flat, flat), torch.zeros(3))
    inf = torch.full((3,), float("inf"))
    assert torch.equal(parabola_offset(inf, flat, flat * 2), torch.zeros(3))


@pytest.mark.parametrize("true_disparity", [7.3, 7.5 - 1e-3, 12.0, 12.86])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_subpixel_minimum_of_a_cost_parabola(true_disparity, dtype, device):
    """A cost volume that is the same parabola at every pixel: with P1 = P2 = 0 the SGM
    sum is 4x the parabola, whose vertex the refinement must return exactly."""
    ndisp, height, width = 24, 6, 9
    d = torch.arange(ndisp, dtype=dtype, device=device)
    cost = ((d - true_disparity) ** 2)[:, None, None].expand(ndisp, height, width)
    config = SGMConfig(max_disparity=ndisp, p1=0, p2=0, **NO_FILTERS)
    result = disparity_from_cost_volume(cost, config)
    torch.testing.assert_close(
        result.disparity, torch.full((height, width), true_disparity, dtype=torch.float32, device=device)
    )
    whole = disparity_from_cost_volume(cost, dataclasses.replace(config, subpixel=False)).disparity
    assert torch.equal(whole, torch.full_like(whole, round(true_disparity)))


def test_min_disparity_offsets_the_labels():
    cost = ((torch.arange(10.0) - 4.25) ** 2)[:, None, None].expand(10, 3, 4)
    config = SGMConfig(max_disparity=10, min_disparity=-3, p1=0, p2=0, **NO_FILTERS)
    torch.testing.assert_close(disparity_from_cost_volume(cost, config).disparity, torch.full((3, 4), 1.25))


# --------------------------------------------------------------- validity checks
def test_left_right_check_invalidates_occlusions(device):
    scene = layered_scene(height=40, width=120, background=3, foreground=19, columns=(50, 90), seed=4)
    checked = compute_disparity(scene.left, scene.right, SGMConfig(max_disparity=32), device)
    unchecked_config = SGMConfig(max_disparity=32, lr_check=False)
    unchecked = compute_disparity(scene.left, scene.right, unchecked_config, device)
    invalid = torch.isnan(checked.disparity).cpu().numpy()
    assert scene.occluded.sum() == 40 * 16
    assert invalid[scene.occluded].mean() > 0.9
    visible = ~scene.occluded
    visible[:, :8] = False  # x - d < 0 for the first columns
    assert invalid[visible].mean() < 0.03
    assert not torch.isnan(unchecked.disparity).any()
    # a valid disparity always points inside the right image
    disparity = checked.disparity.cpu().numpy()
    columns = np.broadcast_to(np.arange(120)[None, :], disparity.shape)
    assert (columns[~invalid] - np.round(disparity[~invalid]) >= 0).all()
    # invalid pixels have confidence 0, valid ones are in [0, 1]
    conf = checked.confidence.cpu().numpy()
    assert (conf[invalid] == 0).all() and (conf >= 0).all() and (conf <= 1).all()


def test_uniqueness_invalidates_ambiguous_pixels(device):
    """Left half: a single clear minimum. Right half: two equally good minima 10 apart."""
    ndisp, height, width = 20, 4, 10
    cost = torch.full((ndisp, height, width), 50.0, device=device)
    cost[6, :, :] = 5.0
    cost[16, :, width // 2:] = 5.0  # a second, equally good match
    cost[16, :, : width // 2] = 40.0  # a second-best that is clearly worse
    config = SGMConfig(max_disparity=ndisp, p1=0, p2=0, lr_check=False, speckle_window_size=0,
                       uniqueness_ratio=0.1)
    result = disparity_from_cost_volume(cost, config)
    valid = ~torch.isnan(result.disparity)
    assert valid[:, : width // 2].all() and not valid[:, width // 2:].any()
    six = torch.full((height, width // 2), 6.0, device=device)
    assert torch.equal(result.disparity[:, : width // 2], six)
    # the margin is the confidence: 1 - 5/40 where unique, 0 where invalid
    torch.testing.assert_close(result.confidence[:, : width // 2],
                               torch.full((height, width // 2), 1 - 5 / 40, device=device))
    assert (result.confidence[:, width // 2:] == 0).all()
    relaxed = disparity_from_cost_volume(cost, dataclasses.replace(config, uniqueness_ratio=0.0))
    assert not torch.isnan(relaxed.disparity).any()


def test_speckle_filter_removes_small_islands():
    ndisp, height, width = 16, 30, 30
    cost = torch.full((ndisp, height, width), 30.0)
    cost[4] = 1.0
    cost[4, 10:13, 10:13] = 30.0
    cost[12, 10:13, 10:13] = 1.0  # a 3x3 island at disparity 12
    base = SGMConfig(max_disparity=ndisp, p1=0, p2=0, lr_check=False, uniqueness_ratio=0.0)
    kept = disparity_from_cost_volume(cost, dataclasses.replace(base, speckle_window_size=0)).disparity
    removed = disparity_from_cost_volume(cost, dataclasses.replace(base, speckle_window_size=20,
                                                                   speckle_range=1.0))
    assert (kept[10:13, 10:13] == 12).all()
    assert torch.isnan(removed.disparity[10:13, 10:13]).all()
    assert torch.isnan(removed.disparity).sum() == 9
    assert (removed.confidence[10:13, 10:13] == 0).all()


# -------------------------------------------------------------- matching cost
@pytest.mark.parametrize("cost_type", ["ad_gradient", "census"])
def test_matching_cost_volume(cost_type, device):
    scene = layered_scene(background=7, seed=5)
    config = SGMConfig(max_disparity=20, cost=cost_type)
    cost = compute_matching_cost(scene.left, scene.right, config, device)
    assert cost.shape == (20, 48, 96) and cost.dtype == torch.float32 and cost.device.type == device
    assert cost.permute(1, 2, 0).is_contiguous()
    assert float(cost.min()) >= 0 and float(cost.max()) <= config.max_cost
    assert torch.equal(cost, cost.round())
    # pixels whose match x - d is outside the right image cost the maximum
    assert (cost[10, :, :10] == config.max_cost).all() and (cost[10, :, 10:] < config.max_cost).any()
    # the true disparity wins on the textured interior already before aggregation
    winners = cost[:, 4:-4, 24:-4].argmin(dim=0)
    assert (winners == 7).float().mean() > 0.95


def test_cost_volume_path_equals_full_pipeline():
    """``disparity_from_cost_volume(compute_matching_cost(...))`` reproduces
    ``compute_disparity`` (same cost, float32 instead of int16 arithmetic)."""
    scene = layered_scene(background=4, foreground=13, seed=6)
    config = SGMConfig(max_disparity=24, uniqueness_ratio=0.05, speckle_window_size=10)
    direct = compute_disparity(scene.left, scene.right, config, "cpu")
    staged = disparity_from_cost_volume(compute_matching_cost(scene.left, scene.right, config, "cpu"), config)
    torch.testing.assert_close(staged.disparity, direct.disparity, equal_nan=True)
    torch.testing.assert_close(staged.confidence, direct.confidence)


def test_workspace_reuse_gives_identical_results():
    workspace = Workspace()
    config = SGMConfig(max_disparity=24, num_paths=8)
    results = []
    for seed in (7, 8, 7):
        scene = layered_scene(background=5, foreground=12, seed=seed)
        results.append(compute_disparity(scene.left, scene.right, config, "cpu", workspace=workspace))
    torch.testing.assert_close(results[0].disparity, results[2].disparity, equal_nan=True)
    assert workspace.nbytes > 0
    small = layered_scene(height=20, width=40, background=3, seed=9)
    again = compute_disparity(small.left, small.right, config, "cpu", workspace=workspace)
    fresh = compute_disparity(small.left, small.right, config, "cpu")
    torch.testing.assert_close(again.disparity, fresh.disparity, equal_nan=True)


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(max_disparity=0), "max_disparity"),
        (dict(max_disparity=12.5), "max_disparity"),
        (dict(min_disparity=1.0), "min_disparity"),
        (dict(p1=-1), "p1"),
        (dict(p1=20, p2=10), "p2"),
        (dict(p2=float("nan")), "p2"),
        (dict(num_paths=5), "num_paths"),
        (dict(cost="sad"), "cost"),
        (dict(intensity_truncation=0), "intensity_truncation"),
        (dict(gradient_truncation=-1), "gradient_truncation"),
        (dict(census_width=4), "census_width"),
        (dict(census_width=15, census_height=9), "census window"),
        (dict(subpixel=1), "subpixel"),
        (dict(lr_max_diff=-0.5), "lr_max_diff"),
        (dict(uniqueness_ratio=1.0), "uniqueness_ratio"),
        (dict(uniqueness_ratio=-0.1), "uniqueness_ratio"),
        (dict(speckle_window_size=-1), "speckle_window_size"),
        (dict(speckle_range=-2.0), "speckle_range"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SGMConfig(**kwargs)


def test_config_is_frozen_and_reports_its_range():
    config = SGMConfig(max_disparity=64, min_disparity=-4)
    assert config.disparity_range == (-4, 59)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.p1 = 3  # type: ignore[misc]


def test_mismatched_sizes_name_both():
    left = np.zeros((40, 60), dtype=np.uint8)
    right = np.zeros((40, 64), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"60x40.*64x40"):
        compute_disparity(left, right, SGMConfig(max_disparity=16), "cpu")
    with pytest.raises(ValueError, match=r"60x40.*64x40"):
        compute_matching_cost(left, right, SGMConfig(max_disparity=16), "cpu")


@pytest.mark.parametrize(
    "left, right, message",
    [
        (np.zeros((4, 5, 2), np.uint8), np.zeros((4, 5, 2), np.uint8), "shape"),
        (np.zeros((4, 5), np.int64), np.zeros((4, 5), np.int64), "dtype"),
        (np.zeros((4, 5), np.uint8), np.zeros((4, 5), np.float32), "dtype"),
        (np.full((4, 5), np.nan, np.float32), np.zeros((4, 5), np.float32), "NaN"),
        ([[0, 1]], [[0, 1]], "numpy array or a torch tensor"),
    ],
)
def test_bad_images_are_rejected(left, right, message):
    with pytest.raises(ValueError, match=message):
        compute_disparity(left, right, SGMConfig(max_disparity=4), "cpu")


def test_bad_cost_volumes_are_rejected():
    with pytest.raises(ValueError, match="max_disparity"):
        disparity_from_cost_volume(torch.zeros(8, 4, 4), SGMConfig(max_disparity=16))
    with pytest.raises(ValueError, match="NaN or inf"):
        disparity_from_cost_volume(torch.full((16, 4, 4), float("inf")), SGMConfig(max_disparity=16))
    with pytest.raises(ValueError, match="SGMConfig"):
        disparity_from_cost_volume(torch.zeros(16, 4, 4), {"max_disparity": 16})
