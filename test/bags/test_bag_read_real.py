"""Reading the real rosbag2 recordings: an MCAP file and a sqlite3 directory."""

import numpy as np
import pytest
from bag_data import MCAP_BAG, SQLITE_BAG

from kestrel_tools.bags import open_bag

TF = "tf2_msgs/msg/TFMessage"


def test_mcap_topics_types_and_counts():
    with open_bag(MCAP_BAG) as bag:
        assert bag.topics == {"/odom": "nav_msgs/msg/Odometry", "/tf": TF, "/tf_static": TF,
                              "/amcl_pose": "geometry_msgs/msg/PoseWithCovarianceStamped"}
        assert not bag.damaged
        seen: dict[str, int] = {}
        stamps = []
        for message in bag.messages():
            seen[message.topic] = seen.get(message.topic, 0) + 1
            stamps.append(message.timestamp_ns)
            assert message.msgtype == bag.topics[message.topic] == message.msg.__msgtype__
        assert seen == {topic: bag.message_count(topic) for topic in bag.topics}
        assert all(count > 0 for count in seen.values())
        assert np.all(np.diff(stamps) >= 0), "rosbags reads in timestamp order"
        assert (bag.start_ns, bag.end_ns) == (stamps[0], stamps[-1])


def test_sqlite_directory_and_its_bare_db3_read_the_same():
    with open_bag(SQLITE_BAG) as directory, open_bag(SQLITE_BAG / "tf_example.db3") as bare:
        assert directory.topics == bare.topics == {"/tf": TF, "/tf_static": TF}
        assert directory.message_count("/tf") == 517 and directory.message_count("/tf_static") == 1
        first = [(m.topic, m.timestamp_ns, m.msg) for m in directory.messages(raw=True)]
        second = [(m.topic, m.timestamp_ns, m.msg) for m in bare.messages(raw=True)]
        assert first == second and len(first) == 518


@pytest.mark.parametrize("path", [MCAP_BAG, SQLITE_BAG], ids=["mcap", "sqlite3"])
def test_tf_frames_are_named_and_rotations_are_unit_quaternions(path):
    with open_bag(path) as bag:
        transforms = [t for m in bag.messages(["/tf", "/tf_static"]) for t in m.msg.transforms]
    assert len(transforms) > 500
    assert all(t.header.frame_id and t.child_frame_id for t in transforms)
    quaternions = np.array([[t.transform.rotation.x, t.transform.rotation.y,
                             t.transform.rotation.z, t.transform.rotation.w] for t in transforms])
    np.testing.assert_allclose(np.linalg.norm(quaternions, axis=1), 1.0, atol=1e-9)
    frames = {(t.header.frame_id, t.child_frame_id) for t in transforms}
    assert ("odom", "base_link") in frames or ("odom", "base_footprint") in frames


def test_odom_header_stamps_increase_and_poses_are_in_the_odom_frame():
    with open_bag(MCAP_BAG) as bag:
        odom = list(bag.messages("/odom"))
    stamps = np.array([m.msg.header.stamp.sec * 10**9 + m.msg.header.stamp.nanosec for m in odom])
    assert len(odom) == 2639
    assert np.all(np.diff(stamps) > 0)
    assert np.all(np.diff([m.timestamp_ns for m in odom]) >= 0)
    assert {(m.msg.header.frame_id, m.msg.child_frame_id) for m in odom} == {("odom", "base_link")}
    positions = np.array([[m.msg.pose.pose.position.x, m.msg.pose.pose.position.y] for m in odom])
    assert np.isfinite(positions).all() and np.ptp(positions, axis=0).max() > 0.5  # it drove
