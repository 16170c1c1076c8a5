"""Flow metrics (EPE, outlier rate) and the OpenCV baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flow_cases import shift_image
from kestrel_core.flow import (
    FarnebackConfig,
    endpoint_errors,
    flow_epe,
    flow_outlier_rate,
    opencv_dis_flow,
    opencv_farneback_flow,
)


def _pair():
    gt = np.zeros((3, 4, 2))  # 12 pixels
    flow = gt.copy()
    flow[0, 0] = (3.0, 4.0)  # error 5
    flow[0, 1] = (1.0, 0.0)  # error 1
    flow[1, 2] = (0.0, -2.0)  # error 2
    return flow, gt


def test_epe_is_the_mean_endpoint_error():
    flow, gt = _pair()
    assert flow_epe(flow, gt) == pytest.approx(8.0 / 12.0)
    assert sorted(endpoint_errors(flow, gt)) == [0.0] * 9 + [1.0, 2.0, 5.0]
    # either layout, numpy or torch, and mixed
    assert flow_epe(torch.from_numpy(np.moveaxis(flow, -1, 0)), gt) == pytest.approx(8.0 / 12.0)


def test_valid_mask_and_unknown_ground_truth_restrict_the_evaluation():
    flow, gt = _pair()
    valid = np.ones((3, 4), bool)
    valid[0, 0] = False
    assert flow_epe(flow, gt, valid) == pytest.approx(3.0 / 11.0)
    gt_unknown = gt.copy()
    gt_unknown[1, 2] = (np.inf, 0.0)
    assert flow_epe(flow, gt_unknown, torch.from_numpy(valid)) == pytest.approx(1.0 / 10.0)
    assert np.isnan(flow_epe(flow, gt, np.zeros((3, 4), bool)))
    with pytest.raises(ValueError):
        flow_epe(flow, gt, np.ones((4, 3), bool))


def test_outlier_rate_counts_errors_above_the_threshold():
    flow, gt = _pair()
    assert flow_outlier_rate(flow, gt) == pytest.approx(1.0 / 12.0)  # only the 5 px error
    assert flow_outlier_rate(flow, gt, threshold=0.5) == pytest.approx(3.0 / 12.0)
    # with a relative bound an error only counts if it is also large against |gt|
    gt_big = gt + np.array([100.0, 0.0])
    flow_big = flow + np.array([100.0, 0.0])
    assert flow_outlier_rate(flow_big, gt_big, threshold=0.5, relative=0.05) == 0.0
    assert flow_outlier_rate(flow_big, gt_big, threshold=0.5, relative=0.015) == pytest.approx(2.0 / 12.0)


def test_non_finite_estimates_are_not_dropped():
    flow, gt = _pair()
    flow[1, 1] = (np.nan, 0.0)
    assert np.isnan(flow_epe(flow, gt))
    assert flow_outlier_rate(flow, gt) == pytest.approx(2.0 / 12.0)


def test_mismatched_sizes_are_rejected():
    with pytest.raises(ValueError):
        flow_epe(np.zeros((4, 5, 2)), np.zeros((4, 6, 2)))


@pytest.mark.parametrize("preset", ["ultrafast", "fast", "medium"])
def test_dis_recovers_a_translation(real_crop, preset):
    moved = shift_image(real_crop, 2.0, -1.0)
    flow = opencv_dis_flow(real_crop, moved, preset)
    assert flow.shape == (256, 256, 2) and flow.dtype == np.float32
    gt = np.broadcast_to(np.array([2.0, -1.0]), flow.shape)
    assert np.median(endpoint_errors(flow[20:-20, 20:-20], gt[20:-20, 20:-20])) < 0.3


def test_farneback_recovers_a_translation_from_rgb_floats(real_crop):
    moved = shift_image(real_crop, 2.0, -1.0)
    rgb = lambda image: np.repeat(image[..., None], 3, axis=2).astype(np.float32) / 255.0  # noqa: E731
    flow = opencv_farneback_flow(rgb(real_crop), rgb(moved), FarnebackConfig())
    assert flow.shape == (256, 256, 2) and flow.dtype == np.float32
    gt = np.broadcast_to(np.array([2.0, -1.0]), flow.shape)
    assert np.median(endpoint_errors(flow[20:-20, 20:-20], gt[20:-20, 20:-20])) < 0.3


def test_baseline_arguments_are_checked(real_crop):
    with pytest.raises(ValueError):
        opencv_dis_flow(real_crop, real_crop, "slow")
    with pytest.raises(ValueError):
        opencv_dis_flow(real_crop, real_crop[:, :-1])
    for kwargs in ({"poly_n": 6}, {"pyramid_scale": 1.0}, {"levels": 0}):
        with pytest.raises(ValueError):
            FarnebackConfig(**kwargs)
