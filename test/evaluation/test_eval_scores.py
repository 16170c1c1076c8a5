"""``evaluate_bag`` on the reduced sample bag gives the scores of the core run directly on the
source data (computed here from ../shared/data, without the bag)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kestrel_core.flow import LKConfig, dense_lucas_kanade, flow_epe, flow_outlier_rate
from kestrel_core.fusion import complete_depth_guided, default_T_lidar_cam, project_points, \
    simulate_lidar_from_depth, sparse_depth_image
from kestrel_core.geometry.stereo import disparity_to_depth
from kestrel_core.stereo import SGMConfig, compute_disparity
from kestrel_tools.datasets import load_middlebury_motorcycle
from kestrel_tools.evaluation import EvalOptions
from kestrel_tools.evaluation.runner import evaluate_bag
from kestrel_tools.evaluation.depth import depth_metrics
from kestrel_tools.metrics import stereo_metrics
from kestrel_tools.paths import data_dir
from kestrel_tools.sample import SampleConfig
from kestrel_tools.sample.motion import drifting_odometry
from kestrel_tools.sample.stereo import downscale_pair, ground_truth_depth
from kestrel_tools.trajectory import evaluate, load_tum

CONFIG = SampleConfig.reduced()
OPTIONS = EvalOptions(max_disparity=32, progress=False)


@pytest.fixture(scope="module")
def motorcycle():
    return downscale_pair(load_middlebury_motorcycle(), CONFIG.max_width)


@pytest.fixture(scope="module")
def direct_disparity(motorcycle):
    result = compute_disparity(motorcycle.left, motorcycle.right, SGMConfig(max_disparity=32), "cpu")
    return result.disparity.numpy()


@pytest.fixture(scope="module")
def results(sample_bag):
    return {r.task: r for r in evaluate_bag(sample_bag, ["stereo", "depth", "trajectory"],
                                            OPTIONS)}


def test_stereo_scores_equal_the_core_on_the_source_pair(results, motorcycle, direct_disparity):
    expected = stereo_metrics(direct_disparity, motorcycle.ground_truth)
    stereo = results["stereo"]
    assert stereo.summary["frames"] == 1  # the OAK-D pair has no ground truth
    for key, value in expected.items():
        assert stereo.summary[key] == pytest.approx(value, rel=1e-9, abs=1e-12)
    assert 0.0 < expected["bad2"] < 0.5 and expected["density"] > 0.5  # SGM works at all


def test_depth_scores_equal_the_core(results, motorcycle, direct_disparity):
    truth = ground_truth_depth(motorcycle)
    left, right = motorcycle.left_camera, motorcycle.right_camera
    baseline = -right.P[0, 3] / right.fx
    stereo_depth = disparity_to_depth(direct_disparity, left.fx, baseline, right.cx - left.cx)
    points = simulate_lidar_from_depth(truth, left, n_beams=CONFIG.lidar_beams)
    camera_t_lidar = np.linalg.inv(default_T_lidar_cam())
    sparse = sparse_depth_image(project_points(points, camera_t_lidar, left), left.height, left.width)
    dense, _ = complete_depth_guided(sparse.numpy(), motorcycle.left)
    summary = results["depth"].summary
    for source, depth in (("stereo", stereo_depth), ("lidar", dense)):
        for key, value in depth_metrics(depth, truth).items():
            assert summary[f"{source}_{key}"] == pytest.approx(value, rel=1e-5, abs=1e-9), key
    assert summary["lidar_mae"] < 0.2 and summary["lidar_density"] == pytest.approx(1.0)


def test_depth_metrics_closed_form():
    truth = np.array([[1.0, 2.0], [4.0, np.nan]], np.float32)
    depth = np.array([[1.5, 2.0], [np.nan, 3.0]], np.float32)
    scores = depth_metrics(depth, truth)
    assert scores["rmse"] == pytest.approx(np.sqrt(0.25 / 2))
    assert scores["mae"] == pytest.approx(0.25)
    assert scores["abs_rel"] == pytest.approx(0.25)
    assert scores["delta_1_25"] == pytest.approx(0.5)  # 1.5 / 1 is outside, 2 / 2 inside
    assert scores["density"] == pytest.approx(2 / 3)


def test_flow_scores_equal_the_core(sample_bag, motorcycle):
    flow = evaluate_bag(sample_bag, ["flow"], OPTIONS)[0]
    estimate = dense_lucas_kanade(motorcycle.left, motorcycle.right, LKConfig(), "cpu")
    truth = np.stack([-motorcycle.ground_truth, np.where(np.isfinite(motorcycle.ground_truth),
                                                         0.0, np.nan)], axis=-1)
    assert flow.summary["epe"] == pytest.approx(flow_epe(estimate, truth), rel=1e-6)
    assert flow.summary["fl"] == pytest.approx(
        flow_outlier_rate(estimate, truth, threshold=3.0, relative=0.05), rel=1e-6)
    assert flow.summary["video_pairs"] == CONFIG.video_frames - 1
    # pedestrians move: warping by the flow explains the next frame better than standing still
    assert flow.summary["photometric"] < flow.summary["photometric_zero_flow"]


def test_trajectory_scores_equal_the_trajectory_metrics(results):
    tum = load_tum(data_dir() / "trajectories" / "freiburg1_xyz-groundtruth.txt")
    summary = results["trajectory"].summary
    truth = tum.take(np.arange(summary["pairs"]))
    odometry = drifting_odometry(truth, CONFIG.odom_scale, CONFIG.odom_yaw_drift_deg_s)
    for mode in ("se3", "sim3"):
        expected = evaluate(odometry, truth, mode, 0.02, 1.0, "s")
        assert summary[f"ate_{mode}"] == pytest.approx(expected.ate_rmse, rel=1e-6, abs=1e-9)
        assert summary[f"rpe_{mode}"] == pytest.approx(expected.rpe_rmse, rel=1e-6, abs=1e-9)
    # the simulated odometry is 3 % too long: Sim3 shrinks it back and lowers the ATE
    assert summary["scale_sim3"] == pytest.approx(1 / CONFIG.odom_scale, rel=0.02)
    assert summary["ate_sim3"] < summary["ate_se3"]
