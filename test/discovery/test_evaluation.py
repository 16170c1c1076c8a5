"""The evaluation rules: foreground from disparity, best IoU and the k-means baseline."""

from __future__ import annotations

import numpy as np
import pytest

from kestrel_core.discovery.evaluation import best_iou, foreground_from_disparity, kmeans_masks, mask_iou

from discovery_synthetic import planted_keys


def floor_and_box_disparity() -> tuple[np.ndarray, np.ndarray]:
    """A floor plane (disparity growing downwards), a far wall, and a near box on the floor."""
    height, width = 120, 160
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    disparity = np.full((height, width), 10.0)                          # far wall
    floor = rows >= 60
    disparity[floor] = 10.0 + 0.5 * (rows[floor] - 60) + 0.01 * cols[floor]
    box = (rows >= 30) & (rows < 90) & (cols >= 50) & (cols < 110)
    disparity[box] = 40.0
    disparity[35:40, 70:75] = np.nan                                    # unknown inside the box
    disparity[0:5, :] = np.nan
    return disparity, box


def test_foreground_is_the_near_box_without_the_floor():
    disparity, box = floor_and_box_disparity()
    np.testing.assert_array_equal(foreground_from_disparity(disparity), box)


def test_best_iou_picks_the_best_object():
    truth = np.zeros((10, 10), bool)
    truth[2:6, 2:6] = True
    instances = np.zeros((10, 10), np.int32)
    instances[2:6, 2:5] = 2                                             # 12 of 16 pixels
    instances[7:9, 7:9] = 1
    assert best_iou(instances, truth) == (pytest.approx(0.75), 2)
    assert best_iou(np.zeros((10, 10), np.int32), truth) == (0.0, 0)
    assert mask_iou(truth, truth) == 1.0


def test_kmeans_separates_two_planted_regions():
    regions = np.zeros((12, 16), np.int64)
    regions[3:9, 4:12] = 1
    masks = kmeans_masks(planted_keys(regions, noise=0.2), regions.shape, clusters=2)
    assert masks.shape == (2, 12, 16)
    assert max(mask_iou(m, regions == 1) for m in masks) == 1.0
