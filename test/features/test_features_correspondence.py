"""The correspondence score on cases whose answer is known in closed form."""

import numpy as np
import pytest
import torch

from kestrel_tools.datasets import load_middlebury_motorcycle
from kestrel_tools.evaluation_features import (
    cell_disparity,
    correspondence_accuracy,
    evaluate_pixel_patches,
    pixel_patch_features,
)

STRIDE = 8


def shifted_maps(shift_cells: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (C, h, w) right features and left features whose cell j shows right cell j - shift."""
    right = torch.randn(16, 6, 30, generator=torch.Generator().manual_seed(seed))
    return torch.roll(right, shifts=shift_cells, dims=2), right


def constant_disparity(pixels: float, grid=(6, 30)) -> np.ndarray:
    return np.full((grid[0] * STRIDE, grid[1] * STRIDE), pixels, dtype=np.float32)


def test_known_shift_scores_one_and_a_wrong_truth_scores_zero():
    left, right = shifted_maps(3)
    exact = correspondence_accuracy(left, right, constant_disparity(3 * STRIDE), STRIDE)
    # Columns 0-2 have no true match inside the right image and are not counted.
    assert exact.accuracy == 1.0 and exact.cells == 6 * 27
    within_one_cell = correspondence_accuracy(left, right, constant_disparity(3.9 * STRIDE), STRIDE)
    assert within_one_cell.accuracy == 1.0
    wrong = correspondence_accuracy(left, right, constant_disparity(6 * STRIDE), STRIDE)
    assert wrong.accuracy == 0.0


def test_cells_without_enough_ground_truth_are_ignored():
    disparity = constant_disparity(2 * STRIDE)
    disparity[:STRIDE, :] = np.nan  # first cell row entirely unknown
    disparity[STRIDE: STRIDE + STRIDE // 2 + 1, :] = np.nan  # second row: more than half unknown
    cells = cell_disparity(disparity, STRIDE, (6, 30))
    assert np.isnan(cells[:2]).all() and np.all(cells[2:] == 2 * STRIDE)
    left, right = shifted_maps(2)
    assert correspondence_accuracy(left, right, disparity, STRIDE).cells == 4 * 28


def test_pixel_patches_find_a_real_texture_moved_by_a_known_disparity():
    image = load_middlebury_motorcycle().left[100:260, 100:400]
    disparity_px = 3 * STRIDE  # right(x) = left(x + d): whole cells, so the patches reappear exactly
    left = np.ascontiguousarray(image[:, :240])
    right = np.ascontiguousarray(image[:, disparity_px:disparity_px + 240])
    features = pixel_patch_features(left, STRIDE)
    assert features.shape == (3 * STRIDE * STRIDE, 160 // STRIDE, 240 // STRIDE)
    torch.testing.assert_close(features.norm(dim=0), torch.ones(features.shape[1:]))
    result = evaluate_pixel_patches(left, right, constant_disparity(disparity_px, (20, 30)), STRIDE)
    assert result.accuracy > 0.9


def test_no_valid_cell_is_an_error():
    left, right = shifted_maps(1)
    with pytest.raises(ValueError, match="no cell"):
        correspondence_accuracy(left, right, np.full((48, 240), np.nan, np.float32), STRIDE)
