"""End to end: a stereo bag replayed by ``kestrel replay`` into a real stereo_depth process,
its disparity recorded by the same replay, scored against ground truth.

The bag holds crops of Middlebury Motorcycle (downscaled, ground truth scaled with it) with
CameraInfo and distinct, increasing stamps. The recorded DisparityImages must answer every
pair, and score (bad-2.0) like the same core run offline with the config the node builds
from the same parameters.
"""

import os
import subprocess

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from stereo_msgs.msg import DisparityImage

from kestrel_core.stereo import compute_disparity
from kestrel_ros.conversions.disparity import disparity_image_to_numpy
from kestrel_ros.nodes.stereo_depth import sgm_config_from_params
from kestrel_tools.bags import BagWriter, open_bag
from kestrel_tools.datasets import StereoSample, load_middlebury_motorcycle
from kestrel_tools.graph import GraphProbe, NodeProcess, find_executable, local_ros_env
from kestrel_tools.graph_bench.cdr import with_stamp
from kestrel_tools.graph_bench.inputs import (
    crop_stereo_sample,
    resize_stereo_sample,
    stereo_frame,
)
from kestrel_tools.graph_bench.params import effective_params, node_ros_args
from kestrel_tools.metrics import stereo_metrics
from kestrel_tools.paths import config_dir
from kestrel_tools.stereo_client import StereoTopicClient

DOMAIN = int(os.environ["ROS_DOMAIN_ID"])
PARAMS_FILE = config_dir() / "stereo_depth.param.yaml"
OVERRIDES = ("max_disparity:=64",)
QOS_DEPTH = 20  # more than the pairs in the bag: a slow node loses none of them
SCALED_WIDTH, SCALED_HEIGHT = 448, 302
CROP_WIDTH, CROP_HEIGHT = 384, 256
CROP_OFFSETS = ((0, 0), (32, 23), (64, 46))  # (x, y) of each pair's crop
TYPES = {"left/camera_info": "sensor_msgs/msg/CameraInfo",
         "right/camera_info": "sensor_msgs/msg/CameraInfo",
         "left/image_rect": "sensor_msgs/msg/Image", "right/image_rect": "sensor_msgs/msg/Image"}
FIRST_STAMP_NS = 1_700_000_000 * 10**9
PAIR_PERIOD_NS = 500_000_000
INFO_LEAD_NS = 50_000_000  # CameraInfo is recorded just before its images, as a driver sends it


@pytest.fixture(scope="module")
def pairs() -> list[StereoSample]:
    scaled = resize_stereo_sample(load_middlebury_motorcycle(), SCALED_WIDTH, SCALED_HEIGHT)
    return [crop_stereo_sample(scaled, x, y, CROP_WIDTH, CROP_HEIGHT) for x, y in CROP_OFFSETS]


def write_bag(path, pairs: list[StereoSample]) -> list[int]:
    """The pairs as a rosbag2 bag, header stamps = image receive times; the stamps (ns)."""
    stamps = []
    with BagWriter(path) as bag:
        for topic, msgtype in TYPES.items():
            bag.add_topic("/" + topic, msgtype)
        for index, sample in enumerate(pairs):
            stamp = FIRST_STAMP_NS + index * PAIR_PERIOD_NS
            stamps.append(stamp)
            for topic, msg in stereo_frame(sample):
                at = stamp - INFO_LEAD_NS if topic.endswith("camera_info") else stamp
                bag.write("/" + topic, at, with_stamp(serialize_message(msg), stamp))
    return stamps


def offline_bad2(sample: StereoSample) -> float:
    """bad-2.0 of the core on ``sample`` with the config the node builds from its parameters."""
    config = sgm_config_from_params(effective_params(PARAMS_FILE, OVERRIDES))
    disparity = compute_disparity(sample.left, sample.right, config, "cpu").disparity.numpy()
    return stereo_metrics(disparity, sample.ground_truth)["bad2"]


def warm_up(node: NodeProcess, sample: StereoSample) -> None:
    """One pair answered before the replay, so the node's first (slowest) frame cannot outlast
    the recorder's idle time. Its stamp is older than the bag's, and it is not recorded."""
    with GraphProbe("stereo_e2e_warm_up", domain_id=DOMAIN) as probe:
        client = StereoTopicClient(probe, want_points=False)
        assert probe.wait_for_subscribers(client.input_topics, timeout=60.0), node.log()
        client.request(sample.left, sample.right, sample.left_camera, sample.right_camera)


def test_replayed_pairs_are_all_answered_and_score_like_the_offline_core(tmp_path, pairs):
    bag, recorded = tmp_path / "stereo_in", tmp_path / "disparity_out"
    stamps = write_bag(bag, pairs)
    ros_args = node_ros_args(PARAMS_FILE, OVERRIDES, qos_depth=QOS_DEPTH)
    with NodeProcess("stereo_depth", ros_args, domain_id=DOMAIN) as node:
        warm_up(node, pairs[0])
        replay = subprocess.run(
            [find_executable("kestrel"), "replay", str(bag), "--no-clock",
             "--qos-depth", str(QOS_DEPTH), "--wait-for-subscribers", "60",
             "--record", str(recorded), "--record-topics", "/disparity",
             "--record-idle", "10"],  # the node may take seconds per pair on a busy machine
            env=local_ros_env(DOMAIN), capture_output=True, text=True, timeout=180)
        assert replay.returncode == 0, replay.stderr
        assert node.alive(), node.log()
    log = node.log()

    with open_bag(recorded) as reader:
        messages = [deserialize_message(m.msg, DisparityImage)
                    for m in reader.messages("/disparity", raw=True)]
    answered = [msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec for msg in messages]
    assert sorted(answered) == stamps, (replay.stdout, log)  # every pair, once, nothing else

    by_stamp = dict(zip(answered, messages))
    for stamp, sample in zip(stamps, pairs):
        msg = by_stamp[stamp]
        doffs = sample.right_camera.cx - sample.left_camera.cx
        assert msg.header.frame_id == sample.left_camera.frame_id
        assert (msg.image.width, msg.image.height) == (CROP_WIDTH, CROP_HEIGHT)
        disparity = disparity_image_to_numpy(msg) - np.float32(doffs)
        recorded_bad2 = stereo_metrics(disparity, sample.ground_truth)["bad2"]
        assert abs(recorded_bad2 - offline_bad2(sample)) <= 0.005, sample.name
