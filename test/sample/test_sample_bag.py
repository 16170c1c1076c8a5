"""The sample bag: topics, types and counts in both storages, and ground truth that agrees
with the source data in ../shared/data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kestrel_core.fusion import project_points
from kestrel_ros.conversions.camera_info import camera_info_to_model, stereo_rig_from_camera_infos
from kestrel_ros.conversions.image import image_to_numpy
from kestrel_ros.conversions.pointcloud2 import xyz_array
from kestrel_tools.bags import open_bag
from kestrel_tools.cli import main
from kestrel_tools.datasets import load_middlebury_motorcycle, load_oakd_pairs
from kestrel_tools.evaluation.tf_static import StaticTransforms
from kestrel_tools.paths import data_dir
from kestrel_tools.sample import SampleConfig, build_sample_bag, topics
from kestrel_tools.sample.config import T0_NS
from kestrel_tools.trajectory import load_tum

CONFIG = SampleConfig.reduced()


def messages_by_topic(path) -> dict[str, list]:
    with open_bag(path) as bag:
        out: dict[str, list] = {topic: [] for topic in bag.topics}
        for message in bag.messages():
            out[message.topic].append(message)
    return out


@pytest.fixture(scope="module")
def sqlite_bag(tmp_path_factory):
    return build_sample_bag(tmp_path_factory.mktemp("sqlite") / "bag", "sqlite3", CONFIG).path


def test_topics_types_and_counts(sample_bag):
    pairs = 1 + CONFIG.oakd_pairs
    last_camera_s = max(0.5 + (pairs - 1) * CONFIG.stereo_period_s,
                        (CONFIG.video_frames - 1) / CONFIG.video_rate_hz)
    tum = load_tum(data_dir() / "trajectories" / "freiburg1_xyz-groundtruth.txt")
    poses = int(((tum.times - tum.times[0]) <= last_camera_s + 0.2 + 1e-9).sum())
    kitti = np.loadtxt(data_dir() / "trajectories" / "KITTI_00_gt_times.txt")
    scans = int(((kitti - kitti[0]) <= CONFIG.mapping_seconds).sum())
    expected = {topics.LEFT_IMAGE: pairs, topics.RIGHT_IMAGE: pairs, topics.LEFT_INFO: pairs,
                topics.RIGHT_INFO: pairs, topics.GT_DISPARITY: 1, topics.GT_DEPTH: 1,
                topics.LIDAR_POINTS: 1, topics.VIDEO_IMAGE: CONFIG.video_frames,
                topics.TF_STATIC: 1, topics.TF: poses, topics.GT_POSE: poses,
                topics.MAPPING_POINTS: scans, topics.MAPPING_ODOM: scans,
                topics.MAPPING_GT_POSE: scans, topics.MAPPING_GT_MAP: 1}
    with open_bag(sample_bag) as bag:
        assert bag.topics == topics.TOPIC_TYPES
        assert {t: bag.message_count(t) for t in bag.topics} == expected


def test_both_storages_hold_the_same_bytes(sample_bag, sqlite_bag):
    """Deterministic build and lossless round trip: MCAP and sqlite3 carry identical CDR."""
    with open_bag(sample_bag) as mcap, open_bag(sqlite_bag) as sqlite:
        assert any(sqlite_bag.glob("*.db3"))
        left = [(m.topic, m.timestamp_ns, m.msg) for m in mcap.messages(raw=True)]
        right = [(m.topic, m.timestamp_ns, m.msg) for m in sqlite.messages(raw=True)]
    assert len(left) > 0 and sorted(left) == sorted(right)


def test_every_message_is_received_at_its_header_stamp(sample_bag):
    with open_bag(sample_bag) as bag:
        for message in bag.messages([t for t in bag.topics if t not in (topics.TF,
                                                                          topics.TF_STATIC)]):
            stamp = message.msg.header.stamp
            assert stamp.sec * 10**9 + stamp.nanosec == message.timestamp_ns


def test_ground_truth_disparity_and_depth_follow_the_source(sample_bag):
    source = load_middlebury_motorcycle()
    by_topic = messages_by_topic(sample_bag)
    gt_msg = by_topic[topics.GT_DISPARITY][0]
    left_info, right_info = by_topic[topics.LEFT_INFO][0].msg, by_topic[topics.RIGHT_INFO][0].msg
    assert gt_msg.timestamp_ns == by_topic[topics.LEFT_IMAGE][0].timestamp_ns == T0_NS + 500_000_000
    disparity = image_to_numpy(gt_msg.msg)
    height, width = disparity.shape
    assert width == CONFIG.max_width and height == round(500 * CONFIG.max_width / 741)
    assert gt_msg.msg.encoding == "32FC1" and gt_msg.msg.header.frame_id == left_info.header.frame_id
    # each pixel holds the source value at the nearest source pixel centre, times the x scale
    scale = width / source.ground_truth.shape[1]
    cols = np.clip(np.rint((np.arange(width) + 0.5) / scale - 0.5), 0, 740).astype(int)
    rows = np.clip(np.rint((np.arange(height) + 0.5) * 500 / height - 0.5), 0, 499).astype(int)
    expected = source.ground_truth[rows[:, None], cols[None, :]] * scale
    both = np.isfinite(expected) & np.isfinite(disparity)
    assert (np.isnan(disparity) == np.isnan(expected)).mean() > 0.99
    assert (np.abs(disparity[both] - expected[both]) < 1e-3).mean() > 0.99
    # depth = f B / (d + doffs) with the rig of the CameraInfo pair; metric depth survives scaling
    rig = stereo_rig_from_camera_infos(left_info, right_info)
    depth = image_to_numpy(by_topic[topics.GT_DEPTH][0].msg)
    known = np.isfinite(disparity)
    np.testing.assert_allclose(depth[known], rig.focal * rig.baseline / (disparity[known] + rig.doffs),
                               rtol=1e-5)
    assert rig.baseline == pytest.approx(source.right_camera.P[0, 3] / -source.right_camera.fx)
    assert rig.focal == pytest.approx(source.left_camera.fx * scale)
    assert rig.doffs == pytest.approx((source.right_camera.cx - source.left_camera.cx) * scale)


def test_oakd_pair_is_the_recorded_pair(sample_bag):
    pair = load_oakd_pairs()[0]
    by_topic = messages_by_topic(sample_bag)
    left, right = by_topic[topics.LEFT_IMAGE][1].msg, by_topic[topics.RIGHT_IMAGE][1].msg
    assert left.encoding == "mono8" and left.header.frame_id == "oakd_left_optical"
    np.testing.assert_array_equal(image_to_numpy(left), pair.left)
    np.testing.assert_array_equal(image_to_numpy(right), pair.right)
    camera = camera_info_to_model(by_topic[topics.LEFT_INFO][1].msg)
    np.testing.assert_allclose(camera.P, pair.left_camera.P)


def test_lidar_points_land_on_the_true_depth(sample_bag):
    """Re-projected with /tf_static, every simulated point hits a pixel whose true depth is
    the point's depth (the scan is made of back-projected pixel centres)."""
    by_topic = messages_by_topic(sample_bag)
    cloud = by_topic[topics.LIDAR_POINTS][0].msg
    camera = camera_info_to_model(by_topic[topics.LEFT_INFO][0].msg)
    depth = image_to_numpy(by_topic[topics.GT_DEPTH][0].msg)
    with open_bag(sample_bag) as bag:
        camera_t_lidar = StaticTransforms(bag).lookup(camera.frame_id, cloud.header.frame_id)
    points = xyz_array(cloud)
    assert len(points) > 1000
    projection = project_points(torch.from_numpy(points).double(), camera_t_lidar, camera)
    uv = projection.uv.numpy()
    assert projection.visible.all()
    np.testing.assert_allclose(uv, np.rint(uv), atol=1e-3)
    cols, rows = np.rint(uv).astype(int).T
    np.testing.assert_allclose(projection.depth.numpy(), depth[rows, cols], rtol=1e-4)


def test_poses_are_the_tum_ground_truth_moved_to_the_bag_start(sample_bag):
    tum = load_tum(data_dir() / "trajectories" / "freiburg1_xyz-groundtruth.txt")
    poses = messages_by_topic(sample_bag)[topics.GT_POSE]
    positions = np.array([(m.msg.pose.position.x, m.msg.pose.position.y, m.msg.pose.position.z)
                          for m in poses])
    stamps = np.array([m.timestamp_ns for m in poses])
    np.testing.assert_allclose(positions, tum.positions[: len(poses)], atol=1e-12)
    np.testing.assert_allclose((stamps - T0_NS) / 1e9, tum.times[: len(poses)] - tum.times[0],
                               atol=1e-6)
    assert poses[0].msg.header.frame_id == topics.WORLD_FRAME


def test_make_sample_cli_refuses_an_existing_bag(sample_bag, capsys):
    assert main(["bag", "make-sample", "--out", str(sample_bag)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists already" in err[0] and str(sample_bag) in err[0]
