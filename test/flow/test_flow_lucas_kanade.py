"""Pyramidal Lucas-Kanade (dense and sparse) on real images moved by known motions."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from flow_cases import affine_flow, affine_image, shift_image, textured_mask
from kestrel_core.flow import LKConfig, dense_lucas_kanade, track_points

SHIFT = (1.3, -0.7)


def _as_input(image: np.ndarray, dtype: str):
    """The test image as uint8, or as float32/float64 in [0, 1]."""
    if dtype == "uint8":
        return image
    return image.astype(dtype) / 255.0


@pytest.mark.parametrize("dtype", ["uint8", "float32", "float64"])
def test_dense_lk_recovers_a_sub_pixel_translation_of_a_real_image(real_crop, device, dtype):
    moved = shift_image(real_crop, *SHIFT)
    flow = dense_lucas_kanade(_as_input(real_crop, dtype), _as_input(moved, dtype), LKConfig(), device)
    assert flow.shape == (2, 256, 256) and flow.device.type == device
    assert flow.dtype == (torch.float64 if dtype == "float64" else torch.float32)
    interior = flow[:, 20:-20, 20:-20].cpu().double()
    error = torch.hypot(interior[0] - SHIFT[0], interior[1] - SHIFT[1])
    assert float(error.median()) < 0.05
    assert float((error < 0.25).double().mean()) > 0.9


def test_dense_lk_recovers_an_affine_warp_of_a_real_image(real_crop, device):
    # 2 degrees of rotation and 2 % of zoom about the centre, then a shift: up to 9 px
    matrix = cv2.getRotationMatrix2D((127.5, 127.5), 2.0, 1.02)
    matrix[:, 2] += (1.5, -0.8)
    moved = affine_image(real_crop, matrix)
    truth = affine_flow(matrix, 256, 256)
    flow = dense_lucas_kanade(real_crop, moved, LKConfig(), device).cpu().numpy()
    textured = textured_mask(real_crop, border=24)
    assert textured.mean() > 0.4
    epe = np.hypot(flow[0] - truth[0], flow[1] - truth[1])[textured]
    assert np.median(epe) < 0.2
    assert np.mean(epe < 1.0) > 0.95


def test_input_kinds_give_the_same_flow(real_crop):
    moved = shift_image(real_crop, *SHIFT)
    reference = dense_lucas_kanade(real_crop, moved, LKConfig(levels=3), "cpu")
    rgb = dense_lucas_kanade(
        np.repeat(real_crop[..., None], 3, axis=2), np.repeat(moved[..., None], 3, axis=2), LKConfig(levels=3), "cpu"
    )
    as_tensor = dense_lucas_kanade(torch.from_numpy(real_crop), torch.from_numpy(moved)[..., None], LKConfig(levels=3))
    scaled = dense_lucas_kanade(real_crop.astype(np.float32), moved.astype(np.float32), LKConfig(levels=3), "cpu")
    for other in (rgb, as_tensor.cpu(), scaled):
        torch.testing.assert_close(other, reference, atol=2e-4, rtol=0)


def test_identical_and_flat_images_give_zero_flow(real_crop, device):
    same = dense_lucas_kanade(real_crop, real_crop, LKConfig(), device)
    assert float(same.abs().max()) < 1e-3  # float32 round-off of the resampling only
    # untextured pixels get no update at any level: exactly zero
    flat = np.full((64, 80), 120, np.uint8)
    brighter = np.full((64, 80), 130, np.uint8)
    assert float(dense_lucas_kanade(flat, brighter, LKConfig(), device).abs().max()) == 0.0


def test_large_motion_needs_the_pyramid(real_crop):
    moved = shift_image(real_crop, 9.0, 4.0)
    interior = (slice(None), slice(30, -30), slice(30, -30))

    def median_error(levels: int) -> float:
        flow = dense_lucas_kanade(real_crop, moved, LKConfig(levels=levels), "cpu")[interior]
        return float(torch.hypot(flow[0] - 9.0, flow[1] - 4.0).median())

    assert median_error(4) < 0.05
    assert median_error(1) > 1.0  # a 15x15 window alone cannot see a 10 px motion


@pytest.mark.parametrize("dtype", ["uint8", "float64"])
def test_track_points_follows_corners_of_a_translated_real_image(real_crop, device, dtype):
    moved = shift_image(real_crop, *SHIFT)
    corners = cv2.goodFeaturesToTrack(real_crop, 80, 0.01, 8)[:, 0]
    corners = corners[(corners.min(axis=1) > 20) & (corners.max(axis=1) < 235)]
    assert len(corners) > 30
    flat = np.array([[-5.0, 10.0], [300.0, 40.0]])  # outside the image
    points = np.concatenate((corners, flat))
    new_points, status = track_points(_as_input(real_crop, dtype), _as_input(moved, dtype), points, LKConfig(), device)
    assert new_points.shape == (len(points), 2) and status.shape == (len(points),) and status.dtype == torch.bool
    assert status[: len(corners)].all() and not status[len(corners) :].any()
    moved_by = new_points[: len(corners)].cpu().double() - torch.from_numpy(corners).double()
    error = torch.hypot(moved_by[:, 0] - SHIFT[0], moved_by[:, 1] - SHIFT[1])
    assert float(error.median()) < 0.05 and float(error.max()) < 0.25


def test_track_points_flags_untextured_points():
    rng = np.random.default_rng(0)
    image = np.full((96, 96), 100, np.uint8)
    image[:, :48] = cv2.GaussianBlur(rng.integers(0, 256, (96, 48)).astype(np.uint8), (0, 0), 1.0)
    points = torch.tensor([[20.0, 40.0], [80.0, 40.0]])  # textured half, flat half
    _, status = track_points(image, image, points, LKConfig(levels=2), "cpu")
    assert status.tolist() == [True, False]
    empty, empty_status = track_points(image, image, np.zeros((0, 2)), LKConfig(), "cpu")
    assert empty.shape == (0, 2) and empty_status.shape == (0,)


def test_default_pyramid_reaches_a_30_pixel_motion(real_crop, device):
    # 6 levels: the 256-pixel crop is 8 pixels wide at the top, where 28 px is under 1 px
    moved = shift_image(real_crop, 28.0, -9.0)
    flow = dense_lucas_kanade(real_crop, moved, LKConfig(), device)[:, 20:-40, 40:-20].cpu().double()
    error = torch.hypot(flow[0] - 28.0, flow[1] + 9.0)
    assert float(error.median()) < 0.05
    assert float((error < 0.5).double().mean()) > 0.9


def test_finest_iterations_apply_to_the_full_resolution_level_only():
    config = LKConfig(levels=3, iterations=5, finest_iterations=2)
    assert [config.iterations_at(level) for level in (2, 1, 0)] == [5, 5, 2]
    assert LKConfig(iterations=5, finest_iterations=None).iterations_at(0) == 5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"levels": 0},
        {"levels": 2.0},
        {"window": 14},
        {"window": 1},
        {"iterations": 0},
        {"min_eigenvalue": -1.0},
        {"min_eigenvalue": math.nan},
        {"gradient": "sobel"},
        {"interpolation": "nearest"},
        {"finest_iterations": 0},
        {"finest_iterations": 1.5},
    ],
)
def test_invalid_config_is_rejected(kwargs):
    with pytest.raises(ValueError):
        LKConfig(**kwargs)


def test_invalid_inputs_are_rejected(real_crop):
    with pytest.raises(ValueError, match="differ in size"):
        dense_lucas_kanade(real_crop, real_crop[:-1], LKConfig())
    with pytest.raises(ValueError, match="shape"):
        dense_lucas_kanade(real_crop[None], real_crop[None], LKConfig())
    with pytest.raises(ValueError, match="NaN"):
        dense_lucas_kanade(np.full((16, 16), np.nan), np.zeros((16, 16)), LKConfig())
    with pytest.raises(ValueError):
        dense_lucas_kanade(real_crop.astype(np.int32), real_crop.astype(np.int32), LKConfig())
    with pytest.raises(ValueError, match="points"):
        track_points(real_crop, real_crop, np.zeros((4, 3)), LKConfig())
    with pytest.raises(ValueError, match="device"):
        dense_lucas_kanade(real_crop, real_crop, LKConfig(), "tpu")
