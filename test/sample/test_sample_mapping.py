"""The sample bag's mapping stream: the real KITTI 00 drive, scans that see the bag's own
ground-truth world from the true poses, and an odometry with the documented drift."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kestrel_core.mapping import se2
from kestrel_ros.conversions.pointcloud2 import xyz_array
from kestrel_tools.bags import open_bag
from kestrel_tools.evaluation.mapping import read_world
from kestrel_tools.evaluation.tf_static import StaticTransforms
from kestrel_tools.evaluation.trajectory import read_trajectory
from kestrel_tools.mapping_eval.odometry import planar_kitti
from kestrel_tools.paths import data_dir
from kestrel_tools.sample import SampleConfig, topics
from kestrel_tools.sample.config import T0_NS
from kestrel_tools.sample.mapping import DRIFT, SCAN_ON_BASE, SCANNER

CONFIG = SampleConfig.reduced()
MAPPING_TOPICS = (topics.MAPPING_POINTS, topics.MAPPING_ODOM, topics.MAPPING_GT_POSE)


def kitti_start(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """KITTI 00's recorded times (s) and planar poses over its first ``seconds``."""
    root = data_dir() / "trajectories"
    times, poses = planar_kitti(root / "KITTI_00_gt.txt", times_path=root / "KITTI_00_gt_times.txt")
    keep = times - times[0] <= seconds
    return times[keep] - times[0], poses[keep]


def planar(trajectory) -> np.ndarray:
    """(K, 3) ``(x, y, yaw)`` of a trajectory that moves in the plane."""
    yaw = trajectory.rotations.as_euler("xyz")[:, 2]
    return np.column_stack([trajectory.positions[:, :2], yaw])


@pytest.fixture(scope="module")
def stream(sample_bag):
    """Truth, odometry, scans (in the scan frame), the world and base <- scan of the bag."""
    with open_bag(sample_bag) as bag:
        counts = {topic: bag.message_count(topic) for topic in bag.topics}
        truth = read_trajectory(bag, topics.MAPPING_GT_POSE)
        odometry = read_trajectory(bag, topics.MAPPING_ODOM, topics.MAPPING_ODOM_FRAME,
                                   topics.MAPPING_BASE_FRAME)
        scans = [(m.timestamp_ns, m.msg.header.frame_id, xyz_array(m.msg))
                 for m in bag.messages(topics.MAPPING_POINTS)]
        odom_frames = {(m.msg.header.frame_id, m.msg.child_frame_id)
                       for m in bag.messages(topics.MAPPING_ODOM)}
        world = read_world(bag)
        base_t_scan = StaticTransforms(bag).lookup(topics.MAPPING_BASE_FRAME,
                                                   topics.MAPPING_SCAN_FRAME)
    return {"counts": counts, "truth": truth, "odometry": odometry, "scans": scans,
            "odom_frames": odom_frames, "world": world, "base_t_scan": base_t_scan}


def test_the_stream_is_the_real_kitti_drive_at_its_recorded_times(stream):
    times, poses = kitti_start(CONFIG.mapping_seconds)
    assert len(times) > 20
    assert {stream["counts"][topic] for topic in MAPPING_TOPICS} == {len(times)}
    assert stream["counts"][topics.MAPPING_GT_MAP] == 1
    truth = stream["truth"]
    np.testing.assert_allclose(truth.times - T0_NS / 1e9, times, atol=1e-6)
    np.testing.assert_allclose(planar(truth), poses, atol=1e-9)
    np.testing.assert_allclose(truth.positions[:, 2], 0.0)
    stamps = T0_NS + np.round(times * 1e9).astype(np.int64)
    assert [stamp for stamp, _, _ in stream["scans"]] == stamps.tolist()
    assert {frame for _, frame, _ in stream["scans"]} == {topics.MAPPING_SCAN_FRAME}
    assert stream["odom_frames"] == {(topics.MAPPING_ODOM_FRAME, topics.MAPPING_BASE_FRAME)}


def test_the_scanner_is_mounted_as_documented(stream):
    expected = np.eye(4)
    expected[:3, 3] = SCAN_ON_BASE
    np.testing.assert_allclose(stream["base_t_scan"], expected, atol=1e-12)


def test_scans_see_the_ground_truth_world_from_the_true_poses(stream):
    """Every returned point, put in the world with /tf_static and the true pose, lies on a wall
    or box of the bag's world map, and the ray up to it crosses free cells only."""
    world, base_t_scan = stream["world"], stream["base_t_scan"]
    # metres from each free cell's centre to the nearest occupied cell's centre
    to_wall = cv2.distanceTransform((~world.occupied).astype(np.uint8), cv2.DIST_L2,
                                    cv2.DIST_MASK_PRECISE) * world.resolution
    height, width = world.occupied.shape
    near, clear, returns = [], [], []
    for (_, _, points), pose in zip(stream["scans"], planar(stream["truth"])):
        base = points @ base_t_scan[:3, :3].T + base_t_scan[:3, 3]
        np.testing.assert_allclose(base[:, 2], SCAN_ON_BASE[2], atol=1e-6)
        ends = se2.transform_points(pose, base[:, :2].astype(np.float64))
        cells = world.cells_of(ends)
        assert ((cells >= 0) & (cells < [height, width])).all()
        # in an occupied cell or a free one touching it (corners included)
        near.append(to_wall[cells[:, 0], cells[:, 1]] <= np.sqrt(2.0) * world.resolution + 1e-6)
        # samples along each ray, from 0.5 m out to 0.5 m short of the return
        fraction = np.linspace(0.0, 1.0, 12)
        ranges = np.linalg.norm(ends - pose[:2], axis=1)
        along = 0.5 + fraction[None, :] * np.maximum(ranges - 1.0, 0.0)[:, None]  # (R, 12)
        direction = (ends - pose[:2]) / ranges[:, None]
        samples = pose[:2] + direction[:, None, :] * along[:, :, None]
        ray_cells = world.cells_of(samples.reshape(-1, 2))
        clear.append(~world.occupied[ray_cells[:, 0], ray_cells[:, 1]].reshape(-1, 12).any(1))
        returns.append(len(points))
    near, clear = np.concatenate(near), np.concatenate(clear)
    assert near.mean() > 0.999 and clear.mean() > 0.99  # 1 degree of yaw error: near 0.98
    # beams without a return are left out: fewer than all, yet most of a street scan returns
    assert max(returns) < SCANNER.beams and np.mean(returns) > 0.5 * SCANNER.beams


def test_odometry_starts_at_the_truth_and_drifts_by_the_documented_scale(stream):
    truth, odometry = planar(stream["truth"]), planar(stream["odometry"])
    np.testing.assert_allclose(odometry[0], truth[0], atol=1e-9)
    true_steps = np.linalg.norm(np.diff(truth[:, :2], axis=0), axis=1)
    odom_steps = np.linalg.norm(se2.between(odometry[:-1], odometry[1:])[:, :2], axis=1)
    moving = true_steps > 0.1
    ratio = odom_steps[moving].sum() / true_steps[moving].sum()
    assert ratio == pytest.approx(1.0 + DRIFT.scale_error, abs=0.005)
    drift = np.linalg.norm(odometry[-1, :2] - truth[-1, :2])
    assert 0.0 < drift < 0.05 * true_steps.sum()


def test_the_mapping_stream_is_deterministic(sample_bag, tmp_path):
    """A second build writes the same bytes on every mapping topic."""
    from kestrel_tools.sample import build_sample_bag

    again = build_sample_bag(tmp_path / "again", "mcap", CONFIG).path
    chosen = (*MAPPING_TOPICS, topics.MAPPING_GT_MAP, topics.TF_STATIC)
    with open_bag(sample_bag) as first, open_bag(again) as second:
        left = [(m.topic, m.timestamp_ns, m.msg) for m in first.messages(chosen, raw=True)]
        right = [(m.topic, m.timestamp_ns, m.msg) for m in second.messages(chosen, raw=True)]
    assert len(left) > 3 * 20 and left == right
