"""``kestrel replay`` as a user runs it: a real subprocess publishing real bags over DDS.

The test process subscribes with a GraphProbe (or records in the replay process itself) and
checks that what arrives is the bag's content, in the bag's order. Timing is never asserted;
a high ``--rate`` only keeps the tests short.
"""

import os
import signal
import subprocess
from pathlib import Path

import pytest
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from kestrel_tools import cli
from kestrel_tools.bags import BagError, open_bag
from kestrel_tools.graph import GraphProbe, find_executable, local_ros_env
from kestrel_tools.paths import data_dir

DOMAIN = int(os.environ["ROS_DOMAIN_ID"])
BAGS = data_dir() / "bags"
MCAP_BAG = BAGS / "nav2_turtlebot.mcap"
SQLITE_BAG = BAGS / "tf_example"
# Keep every sample: a bag replayed at 50x arrives in bursts faster than Python takes them.
KEEP_ALL = QoSProfile(history=HistoryPolicy.KEEP_ALL, depth=1000,
                      reliability=ReliabilityPolicy.RELIABLE)


def start_replay(*args: object) -> subprocess.Popen:
    return subprocess.Popen([find_executable("kestrel"), "replay", *map(str, args)],
                            env=local_ros_env(DOMAIN), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run_replay(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([find_executable("kestrel"), "replay", *map(str, args)],
                          env=local_ros_env(DOMAIN), capture_output=True, text=True, timeout=60)


def receive_all(probe: GraphProbe, process: subprocess.Popen, expected: dict[str, int]
                ) -> tuple[str, str]:
    """Spin until the replay exits and every topic has its expected count; its output."""
    exited = probe.wait_for(lambda: process.poll() is not None, timeout=60.0)
    if not exited:
        process.kill()
    out, err = process.communicate()
    assert exited and process.returncode == 0, err
    assert probe.wait_for(
        lambda: all(len(probe.received[t]) >= n for t, n in expected.items()), timeout=10.0), \
        ({t: len(probe.received[t]) for t in expected}, out, err)
    return out, err


def stamp(header) -> tuple[int, int]:
    return header.stamp.sec, header.stamp.nanosec


def odom_content(msg) -> tuple:
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    v, w = msg.twist.twist.linear, msg.twist.twist.angular
    return (stamp(msg.header), msg.header.frame_id, msg.child_frame_id,
            p.x, p.y, p.z, q.x, q.y, q.z, q.w, v.x, v.y, w.z)


def tf_content(msg) -> tuple:
    return tuple((stamp(t.header), t.header.frame_id, t.child_frame_id,
                  t.transform.translation.x, t.transform.translation.y,
                  t.transform.rotation.z, t.transform.rotation.w) for t in msg.transforms)


def bag_contents(path: Path, topic: str, content) -> tuple[list, list[int]]:
    with open_bag(path) as bag:
        messages = list(bag.messages(topic))
    return [content(m.msg) for m in messages], [m.timestamp_ns for m in messages]


def test_odometry_arrives_remapped_complete_and_in_order_with_a_monotone_clock():
    from nav_msgs.msg import Odometry
    from rosgraph_msgs.msg import Clock

    expected, times = bag_contents(MCAP_BAG, "/odom", odom_content)
    with GraphProbe("replay_odom_probe", domain_id=DOMAIN) as probe:
        probe.subscribe(Odometry, "/replayed/odom", KEEP_ALL)
        probe.subscribe(Clock, "/clock", KEEP_ALL)
        process = start_replay(MCAP_BAG, "--topics", "/odom", "--remap", "/odom:=/replayed/odom",
                               "--rate", 200, "--wait-for-subscribers", 30)
        out, _ = receive_all(probe, process, {"/replayed/odom": len(expected)})
        received = [odom_content(m) for m in probe.received["/replayed/odom"]]
        clock = [m.clock.sec * 1_000_000_000 + m.clock.nanosec for m in probe.received["/clock"]]
    assert received == expected
    assert "/replayed/odom  2639" in out
    # /clock carries the bag time: monotone, inside the played span, ending on the last message.
    assert clock, "no /clock message"
    assert clock == sorted(clock)
    assert times[0] <= clock[0] and clock[-1] == times[-1]


def test_tf_from_a_sqlite_bag_arrives_with_its_frames_in_order_and_a_clock_per_message():
    from rosgraph_msgs.msg import Clock
    from tf2_msgs.msg import TFMessage

    expected, times = bag_contents(SQLITE_BAG, "/tf", tf_content)
    with GraphProbe("replay_tf_probe", domain_id=DOMAIN) as probe:
        probe.subscribe(TFMessage, "/tf", KEEP_ALL)
        probe.subscribe(Clock, "/clock", KEEP_ALL)
        process = start_replay(SQLITE_BAG, "--topics", "tf", "--rate", 50, "--clock-rate-hz", 0,
                               "--wait-for-subscribers", 30)
        receive_all(probe, process, {"/tf": len(expected)})
        received = [tf_content(m) for m in probe.received["/tf"]]
        clock = [m.clock.sec * 1_000_000_000 + m.clock.nanosec for m in probe.received["/clock"]]
    assert received == expected
    assert {(t[1], t[2]) for message in received for t in message} == \
        {(t[1], t[2]) for message in expected for t in message}
    # --clock-rate-hz 0: one /clock per message, holding its bag time (the first few may go
    # out before /clock's subscriber matched, so compare the tail).
    assert clock and clock == times[-len(clock):]


def test_loop_replays_the_bag_again_until_interrupted():
    from rosgraph_msgs.msg import Clock
    from tf2_msgs.msg import TFMessage

    expected, _ = bag_contents(SQLITE_BAG, "/tf", tf_content)
    n = len(expected)
    with GraphProbe("replay_loop_probe", domain_id=DOMAIN) as probe:
        probe.subscribe(TFMessage, "/tf", KEEP_ALL)
        probe.subscribe(Clock, "/clock", KEEP_ALL)
        process = start_replay(SQLITE_BAG, "--topics", "/tf", "--rate", 100, "--loop",
                               "--no-clock", "--wait-for-subscribers", 30)
        try:
            assert probe.wait_for(lambda: len(probe.received["/tf"]) >= 2 * n, timeout=60.0)
        finally:
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
        received = [tf_content(m) for m in probe.received["/tf"]]
    assert process.returncode == 0, err
    assert "[interrupted]" in out
    assert received[:n] == expected and received[n:2 * n] == expected
    assert not probe.received["/clock"]


def test_recording_the_replayed_topics_gives_back_the_same_messages(tmp_path):
    out_bag = tmp_path / "loopback"
    topics = ["/odom", "/tf", "/tf_static"]
    # 25x is about 2,000 messages/s. At 200x (14,000/s) the recorder, a Python subscriber,
    # can fall behind on a loaded machine and DDS loses /tf messages; the replay then warns
    # that the recorder got fewer messages than were played.
    result = run_replay(MCAP_BAG, "--topics", *topics, "--remap", "/odom:=/robot/odom",
                        "--rate", 25, "--record", out_bag,  # waits for its own recorder
                        "--record-topics", "/robot/odom", "/tf", "/tf_static", "/never_published",
                        "--record-storage", "mcap", "--record-idle", 0.5)
    assert result.returncode == 0, result.stderr
    assert "recorded" in result.stdout and "/robot/odom       2639" in result.stdout
    assert "/never_published  0  (no publisher seen)" in result.stdout
    with open_bag(MCAP_BAG) as source, open_bag(out_bag) as recorded:
        assert recorded.topics == {"/robot/odom": "nav_msgs/msg/Odometry",
                                   "/tf": "tf2_msgs/msg/TFMessage",
                                   "/tf_static": "tf2_msgs/msg/TFMessage"}
        for topic, recorded_topic in [("/odom", "/robot/odom"), ("/tf", "/tf"),
                                      ("/tf_static", "/tf_static")]:
            sent = list(source.messages(topic, raw=True))
            got = list(recorded.messages(recorded_topic, raw=True))
            assert [m.msg for m in got] == [m.msg for m in sent], topic  # the same CDR bytes
        odom = [odom_content(m.msg) for m in recorded.messages("/robot/odom")]
    assert odom == bag_contents(MCAP_BAG, "/odom", odom_content)[0]


def test_recording_catches_another_nodes_outputs_until_they_stop(tmp_path):
    """The test process plays a node: it echoes each /tf it gets onto /tf_echo, so the last
    echoes come after the bag has ended; the recorder waits for them (--record-idle)."""
    from tf2_msgs.msg import TFMessage

    expected, _ = bag_contents(SQLITE_BAG, "/tf", tf_content)
    out_bag = tmp_path / "outputs"
    with GraphProbe("replay_echo_node", domain_id=DOMAIN) as probe:
        probe.subscribe(TFMessage, "/tf", KEEP_ALL)
        echo = probe.publisher(TFMessage, "/tf_echo", KEEP_ALL)
        echoed = 0

        def echo_new() -> None:  # once the recorder listens, echo everything received so far
            nonlocal echoed
            if echo.get_subscription_count() == 0:
                return
            for message in probe.received["/tf"][echoed:]:
                echo.publish(message)
                echoed += 1

        process = start_replay(SQLITE_BAG, "--topics", "/tf", "--rate", 100, "--no-clock",
                               "--wait-for-subscribers", 30, "--record", out_bag,
                               "--record-topics", "/tf_echo", "--record-idle", 1.0)
        assert probe.wait_for(lambda: process.poll() is not None, timeout=60.0,
                              while_waiting=echo_new, period=0.0)
        out, err = process.communicate()
    assert process.returncode == 0, err
    assert echoed == len(expected)
    assert f"/tf_echo  {len(expected)}" in out, out
    with open_bag(out_bag) as recorded:
        assert [tf_content(m.msg) for m in recorded.messages("/tf_echo")] == expected


def test_a_truncated_bag_is_played_up_to_the_damage_then_reported(tmp_path):
    damaged = tmp_path / "cut.mcap"
    data = MCAP_BAG.read_bytes()
    cut = len(data) // 2
    damaged.write_bytes(data[:cut])
    readable = 0
    with open_bag(damaged) as bag:
        with pytest.raises(BagError) as caught:
            for _ in bag.messages("/odom", raw=True):
                readable += 1
    assert readable > 0 and caught.value.offset is not None
    result = run_replay(damaged, "--topics", "/odom", "--rate", 1000)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kestrel replay: error:"), result.stderr
    # the reader's own reason, which names the byte offset of the damage
    assert lines[0] == "kestrel replay: error: " + " ".join(str(caught.value).split())
    assert str(caught.value.offset) in lines[0]
    assert f"/odom  {readable}" in result.stdout  # what could be read was published


def test_missing_bag_is_one_line():
    result = run_replay("/nonexistent/bag_dir")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "kestrel replay: error: no such bag: /nonexistent/bag_dir"]


def one_line_error(capsys, *args: object) -> str:
    """Run ``kestrel replay ARGS`` in this process (they fail before any ROS set-up)."""
    assert cli.main(["replay", *map(str, args)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kestrel replay: error: "), lines
    return lines[0]


def test_unknown_topic_is_one_line_naming_it(capsys):
    line = one_line_error(capsys, SQLITE_BAG, "--topics", "/tf", "/not_a_topic")
    assert "topic /not_a_topic is not in" in line and "/tf_static" in line


def test_bad_remaps_rates_and_record_arguments_are_refused(capsys, tmp_path):
    assert "--remap /odom: not a played topic" in one_line_error(
        capsys, SQLITE_BAG, "--remap", "/odom:=/x")
    assert "OLD:=NEW" in one_line_error(capsys, SQLITE_BAG, "--remap", "/tf=/x")
    assert "--rate must be positive" in one_line_error(capsys, SQLITE_BAG, "--rate", 0)
    assert "exists already" in one_line_error(
        capsys, SQLITE_BAG, "--record", tmp_path, "--record-topics", "/tf")
    assert "go together" in one_line_error(capsys, SQLITE_BAG, "--record", tmp_path / "new")
