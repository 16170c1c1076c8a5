"""Bags that cannot be read as asked: BagError names the file, and the topic when there is one."""

import sqlite3

import pytest
from bag_data import MCAP_BAG, SQLITE_BAG, writable_copy

from kestrel_tools.bags import BagError, open_bag


def test_a_missing_path(tmp_path):
    with pytest.raises(BagError, match=f"no such bag: {tmp_path / 'nope'}"):
        open_bag(tmp_path / "nope")


def test_metadata_that_lists_a_missing_storage_file(tmp_path):
    bag = tmp_path / "bag"
    bag.mkdir()
    (bag / "metadata.yaml").write_text((SQLITE_BAG / "metadata.yaml").read_text())
    with pytest.raises(BagError) as caught:
        open_bag(bag)
    assert f"{bag / 'metadata.yaml'}: lists storage files that do not exist: " \
           f"{bag / 'tf_example.db3'}" in str(caught.value)


def test_a_directory_without_metadata(tmp_path):
    with pytest.raises(BagError, match="not a rosbag2 bag: there is no metadata.yaml"):
        open_bag(tmp_path)


def test_a_file_that_is_not_mcap(tmp_path):
    fake = tmp_path / "fake.mcap"
    fake.write_bytes(b"this is not a bag at all" * 10)
    with pytest.raises(BagError) as caught:
        open_bag(fake)
    assert caught.value.offset == 0
    assert f"{fake}: damaged at byte 0: not an MCAP file" in str(caught.value)


def test_a_topic_that_is_not_in_the_bag():
    with open_bag(MCAP_BAG) as bag:
        with pytest.raises(BagError) as caught:
            bag.messages(["/odom", "/scan"])
        assert caught.value.topic == "/scan"
        assert f"{MCAP_BAG}: topic /scan is not in the bag (topics: /amcl_pose, /odom" \
            in str(caught.value)
        with pytest.raises(BagError, match="topic /scan is not in the bag"):
            bag.message_count("/scan")


def test_an_unknown_message_type_without_a_definition(tmp_path):
    db3 = writable_copy(SQLITE_BAG / "tf_example.db3", tmp_path / "tf.db3")
    with sqlite3.connect(db3) as connection:  # /tf now claims a type nobody defines
        connection.execute("UPDATE topics SET type='mystery_msgs/msg/Thing' WHERE name='/tf'")
    with open_bag(db3) as bag:
        assert bag.topics["/tf"] == "mystery_msgs/msg/Thing"
        for topics in (None, ["/tf"]):
            with pytest.raises(BagError) as caught:
                bag.messages(topics)
            assert caught.value.topic == "/tf"
            assert (f"{db3}: topic /tf: message type mystery_msgs/msg/Thing is neither in the "
                    "ROS 2 Kilted type store nor defined in the bag") in str(caught.value)
        assert len(list(bag.messages("/tf_static"))) == 1
        raw = list(bag.messages("/tf", raw=True))
    assert len(raw) == 517 and all(isinstance(m.msg, bytes) and m.msg for m in raw)
