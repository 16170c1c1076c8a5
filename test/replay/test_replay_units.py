"""The replay pieces that need no ROS graph: clock arithmetic, remap parsing, type lookup."""

import pytest

from kestrel_tools.replay.clock import PlaybackClock, clock_message
from kestrel_tools.replay.player import PlayOptions, parse_remaps
from kestrel_tools.replay.types import message_class


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_playback_clock_scales_bag_time_by_the_rate():
    wall = FakeMonotonic()
    clock = PlaybackClock(rate=4.0, monotonic=wall)
    clock.start(1_000_000_000_000)
    # two bag seconds later is due half a wall second later at 4x
    assert clock.due(1_002_000_000_000) == pytest.approx(100.5)
    wall.now = 101.0
    assert clock.now_ns() == 1_004_000_000_000
    clock.start(1_000_000_000_000)  # a loop starts over from the anchor
    assert clock.now_ns() == 1_000_000_000_000


def test_playback_clock_refuses_a_bad_rate_and_use_before_start():
    with pytest.raises(ValueError, match="rate"):
        PlaybackClock(rate=0.0)
    with pytest.raises(RuntimeError, match="not started"):
        PlaybackClock(rate=1.0).now_ns()


def test_clock_message_splits_nanoseconds():
    msg = clock_message(1_700_000_000_123_456_789)
    assert (msg.clock.sec, msg.clock.nanosec) == (1_700_000_000, 123_456_789)


def test_remaps_are_parsed_and_made_absolute():
    assert parse_remaps(["/odom:=/robot/odom", "tf:=tf_old"]) == {
        "/odom": "/robot/odom", "/tf": "/tf_old"}
    for bad in ["/odom", "/odom:=", ":=/x", "/a=/b"]:
        with pytest.raises(ValueError, match="OLD:=NEW"):
            parse_remaps([bad])


def test_play_options_reject_bad_values():
    with pytest.raises(ValueError, match="--rate"):
        PlayOptions(rate=-1.0)
    with pytest.raises(ValueError, match="--qos-depth"):
        PlayOptions(qos_depth=0)
    with pytest.raises(ValueError, match="--clock-rate-hz"):
        PlayOptions(clock_rate_hz=-5.0)


def test_message_class_from_type_names():
    from nav_msgs.msg import Odometry

    assert message_class("nav_msgs/msg/Odometry") is Odometry
    assert message_class("nav_msgs/Odometry") is Odometry
    with pytest.raises(ValueError, match="cannot be imported"):
        message_class("no_such_pkg_msgs/msg/Thing")
    with pytest.raises(ValueError, match="has no"):
        message_class("nav_msgs/msg/NoSuchType")
    with pytest.raises(ValueError, match="not a message type name"):
        message_class("nav_msgs/srv/GetMap")
