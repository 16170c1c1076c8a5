"""Kestrel SGM against OpenCV StereoSGBM on real data: Middlebury 2014 Motorcycle."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from kestrel_core.stereo import (
    OpenCVSGBMConfig,
    SGMConfig,
    Workspace,
    compute_disparity,
    opencv_sgbm_disparity,
)

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("KESTREL_DATA_DIR", REPO.parent / "shared" / "data")) / "stereo" / "motorcycle"


@pytest.fixture(scope="module")
def motorcycle():
    if not (DATA / "motorcycle_left.png").exists():
        pytest.skip(f"Motorcycle data not found in {DATA} (set KESTREL_DATA_DIR)")
    left = cv2.cvtColor(cv2.imread(str(DATA / "motorcycle_left.png")), cv2.COLOR_BGR2RGB)
    right = cv2.cvtColor(cv2.imread(str(DATA / "motorcycle_right.png")), cv2.COLOR_BGR2RGB)
    truth = np.load(DATA / "motorcycle_disp.npz")["arr_0"].astype(np.float32)
    return left, right, truth


def bad_pixels(disparity: np.ndarray, truth: np.ndarray, threshold: float = 2.0) -> float:
    """Fraction of ground-truth pixels with ``|d - gt| > threshold``; invalid (NaN)
    output counts as an error."""
    known = np.isfinite(truth)
    good = np.abs(disparity - truth) <= threshold  # False for NaN
    return float(1.0 - good[known].mean())


@pytest.mark.parametrize("max_disparity", [64, 128])
def test_bad2_is_not_worse_than_opencv_sgbm(motorcycle, max_disparity):
    left, right, truth = motorcycle
    assert left.shape == (500, 741, 3) and truth.shape == (500, 741)
    ours = compute_disparity(left, right, SGMConfig(max_disparity=max_disparity), "cpu")
    opencv = opencv_sgbm_disparity(left, right, OpenCVSGBMConfig(max_disparity=max_disparity))
    ours_bad = bad_pixels(ours.disparity.numpy(), truth)
    opencv_bad = bad_pixels(opencv, truth)
    # generous sanity bounds: both matchers work at all, and neither is degenerate
    assert 0.02 < ours_bad < 0.25
    assert 0.02 < opencv_bad < 0.40
    assert ours_bad <= opencv_bad
    # the outputs follow the contract
    assert ours.disparity.dtype == torch.float32 and opencv.dtype == np.float32
    valid = ~torch.isnan(ours.disparity)
    assert valid.float().mean() > 0.8
    assert float(ours.disparity[valid].min()) >= 0 and float(ours.disparity[valid].max()) <= max_disparity - 1
    conf = ours.confidence
    assert float(conf.min()) >= 0 and float(conf.max()) <= 1 and (conf[~valid] == 0).all()


def test_census_cost_is_more_accurate(motorcycle):
    left, right, truth = motorcycle
    workspace = Workspace()
    default = compute_disparity(left, right, SGMConfig(max_disparity=64), "cpu", workspace=workspace)
    config = SGMConfig(max_disparity=64, cost="census")
    census = compute_disparity(left, right, config, "cpu", workspace=workspace)
    assert bad_pixels(census.disparity.numpy(), truth) < bad_pixels(default.disparity.numpy(), truth)


def test_opencv_baseline_contract(motorcycle):
    left, right, _ = motorcycle
    config = OpenCVSGBMConfig(max_disparity=50)
    assert config.num_disparities == 64
    disparity = opencv_sgbm_disparity(left, right, config)
    assert disparity.shape == (500, 741) and disparity.dtype == np.float32
    valid = np.isfinite(disparity)
    # OpenCV leaves the first numDisparities columns without a match
    assert not valid[:, :60].any() and valid.mean() > 0.5
    # fixed point / 16: quarter-pixel steps at most 1/16
    assert np.allclose(disparity[valid] * 16, np.round(disparity[valid] * 16))
    with pytest.raises(ValueError, match="block_size"):
        OpenCVSGBMConfig(block_size=4)
    with pytest.raises(ValueError, match="shape"):
        opencv_sgbm_disparity(left, right[:, :-1], config)
