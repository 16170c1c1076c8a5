"""Coarse-to-fine flow (2D block matching + smoothed Lucas-Kanade + occlusion filling) on
real images moved by known motions, on a real stereo pair used as flow ground truth, and
on a real video."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from flow_cases import affine_flow, affine_image, shift_image, textured_mask
from kestrel_core.flow import (CoarseToFineConfig, FlowEstimator, LKConfig, coarse_to_fine_flow,
                               dense_lucas_kanade, flow_epe)
from kestrel_core.flow.local_search import local_search, matching_features, search_offsets
from kestrel_tools.evaluation.flow import flow_from_disparity, photometric_scores


def _errors(flow: torch.Tensor, u: np.ndarray | float, v: np.ndarray | float) -> np.ndarray:
    estimate = flow.detach().cpu().double().numpy()
    return np.hypot(estimate[0] - u, estimate[1] - v)


@pytest.mark.parametrize("shift", [(31.0, -12.5), (-4.3, 27.6)])
def test_recovers_large_translations_along_both_axes(real_crop, device, shift):
    moved = shift_image(real_crop, *shift)
    flow = coarse_to_fine_flow(real_crop, moved, CoarseToFineConfig(), device)
    assert flow.shape == (2, 256, 256) and flow.device.type == device and flow.dtype == torch.float32
    # pixels whose content stays in view (the rest of `moved` is a mirrored border)
    tx, ty = shift
    rows = slice(max(0, int(-ty)) + 8, 256 - max(0, int(ty)) - 8)
    cols = slice(max(0, int(-tx)) + 8, 256 - max(0, int(tx)) - 8)
    error = _errors(flow[:, rows, cols], tx, ty)
    assert np.median(error) < 0.1  # sub-pixel; Lucas-Kanade alone reaches about 0.02 on small shifts
    assert np.mean(error < 0.5) > 0.97


def test_recovers_an_affine_warp_of_a_real_video_frame(vtest_frames, device):
    frame = vtest_frames[0]
    height, width = frame.shape
    # 3 degrees of rotation and 4 % of zoom about the centre, then a shift: up to 17 px
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), 3.0, 1.04)
    matrix[:, 2] += (5.0, -3.0)
    moved = affine_image(frame, matrix)
    truth = affine_flow(matrix, height, width)
    flow = coarse_to_fine_flow(frame, moved, CoarseToFineConfig(), device)
    error = _errors(flow, truth[0], truth[1])
    textured = textured_mask(frame, border=24)
    assert textured.mean() > 0.2
    assert np.median(error[textured]) < 0.15
    assert np.mean(error[textured] < 1.0) > 0.95
    # untextured pixels inherit the motion of their surroundings instead of failing
    interior = np.zeros_like(textured)
    interior[24:-24, 24:-24] = True
    assert np.median(error[interior & ~textured]) < 0.5


def test_beats_lucas_kanade_on_motorcycle_as_flow(motorcycle_pair, device):
    # Left -> right flow of a rectified pair is (-d, 0): motions up to 60 px, occlusions and
    # untextured floor. Lucas-Kanade (default) scores about 4.7 px EPE, OpenCV DIS-medium
    # 2.6 px. The bounds: clearly better than LK (at most 70 % of its EPE, measured in this
    # test) and at most 3 px, within 15 % of DIS-medium's EPE.
    left, right, disparity = motorcycle_pair
    truth = flow_from_disparity(disparity)
    flow = coarse_to_fine_flow(left, right, CoarseToFineConfig(), device)
    lk_epe = flow_epe(dense_lucas_kanade(left, right, LKConfig(), device), truth)
    epe = flow_epe(flow, truth)
    print(f"\nMotorcycle-as-flow EPE: coarse-to-fine {epe:.2f} px, LK default {lk_epe:.2f} px")
    assert epe < 0.7 * lk_epe
    assert epe < 3.0


def test_lowers_the_photometric_error_of_a_real_video(vtest_frames):
    first, second = vtest_frames
    flow = FlowEstimator("coarse_to_fine")(first, second, "cpu")
    assert flow.shape == (*first.shape, 2) and flow.dtype == np.float32
    scores = photometric_scores(first, second, flow)
    lk_scores = photometric_scores(first, second, FlowEstimator("lk")(first, second, "cpu"))
    # people walk a few pixels per frame over a static background
    assert scores["photometric"] < 0.8 * scores["photometric_zero_flow"]
    assert scores["photometric"] <= 1.05 * lk_scores["photometric"]


def test_identical_and_flat_images_give_zero_flow(real_crop, device):
    # in untextured areas every candidate matches equally well: the flow must stay zero
    # rather than follow float round-off
    same = coarse_to_fine_flow(real_crop, real_crop, CoarseToFineConfig(), device)
    assert float(same.abs().max()) < 1e-3
    flat, brighter = np.full((64, 80), 120, np.uint8), np.full((64, 80), 130, np.uint8)
    assert float(coarse_to_fine_flow(flat, brighter, CoarseToFineConfig(), device).abs().max()) == 0.0
    step = np.zeros((64, 80), np.uint8)
    step[:, 40:] = 255
    assert float(coarse_to_fine_flow(step, step, CoarseToFineConfig(), device).abs().max()) < 1e-3


def test_local_search_finds_an_integer_motion_and_spreads_a_neighbour_flow(real_crop):
    image = torch.from_numpy(real_crop).double()[None, None] / 255.0
    moved = torch.roll(image, shifts=(-3, 2), dims=(2, 3))  # content moves by (2, -3)
    features1, features2 = matching_features(image, 9), matching_features(moved, 9)
    start = torch.zeros(1, 2, 256, 256, dtype=torch.float64)
    found, _ = local_search(features1, features2, start, radius=3, window=9)
    inner = (slice(None), slice(12, -12), slice(12, -12))
    assert torch.equal(found[0][inner], torch.tensor([2.0, -3.0], dtype=torch.float64).view(2, 1, 1).expand(2, 232, 232))
    # a 20-pixel block with a wrong flow, 15 px off: no offset within radius 1 reaches the
    # right flow, but the flow of the pixels 24 px away does
    wrong = found.clone()
    wrong[..., 100:120, 100:120] += torch.tensor([15.0, 0.0], dtype=torch.float64).view(1, 2, 1, 1)
    fixed, _ = local_search(features1, features2, wrong, radius=1, window=9)
    assert not torch.equal(fixed, found)
    repaired, _ = local_search(features1, features2, wrong, radius=1, window=9, propagation=(24,))
    assert torch.equal(repaired[inner], found[inner])


def test_search_offsets_cover_the_square_nearest_first():
    offsets = search_offsets(2, torch.zeros(1))
    assert offsets.shape == (25, 2) and torch.equal(offsets[0], torch.zeros(2))
    assert len({tuple(o) for o in offsets.tolist()}) == 25
    assert torch.all(offsets.abs().sum(1)[1:] >= offsets.abs().sum(1)[:-1])


@pytest.mark.parametrize("kwargs", [{"levels": 0}, {"search_radius": 0}, {"match_window": 8},
                                    {"median_size": 4}, {"smoothness": -1.0}, {"fill_sigma": 0.0},
                                    {"jacobi_steps": 0}, {"lk": "fast"}, {"propagation": (0,)}])
def test_bad_configs_are_rejected(kwargs):
    with pytest.raises(ValueError):
        CoarseToFineConfig(**kwargs)
