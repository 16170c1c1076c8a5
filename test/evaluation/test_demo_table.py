"""The demo's node table: every node is fed from the sample bag and recorded (no ROS graph)."""

from __future__ import annotations

from pathlib import Path

from kestrel_tools.commands.demo import DEMO_NODES, _replay_command
from kestrel_tools.sample import topics


def test_every_node_input_is_a_sample_topic_remapped_onto_it():
    for node in DEMO_NODES:
        targets = {target for _, target in node.remaps}
        global_names = {topics.TF, topics.TF_STATIC}  # read by these names, never remapped
        assert set(node.inputs) <= set(topics.TOPIC_TYPES)
        assert set(node.inputs) <= targets | global_names
        assert set(node.outputs) <= targets


def test_ros_args_fill_the_command_line_settings():
    for node in DEMO_NODES:
        args = node.ros_args(Path("/cfg"), {"device": "cpu", "max_disparity": 48})
        assert args[:2] == ["--params-file", f"/cfg/{node.executable}.param.yaml"]
        assert "use_sim_time:=true" in args and "device:=cpu" in args
        assert not any("{" in arg for arg in args)
    stereo = DEMO_NODES[0].ros_args(Path("/cfg"), {"device": "cpu", "max_disparity": 48})
    assert "max_disparity:=48" in stereo


def test_replay_plays_the_inputs_and_records_the_outputs():
    command = _replay_command(Path("bag"), Path("rec"), 0.5, 60.0)
    played = command[command.index("--topics") + 1: command.index("--record")]
    recorded = command[command.index("--record-topics") + 1: command.index("--wait-for-subscribers")]
    assert set(played) == {t for node in DEMO_NODES for t in node.inputs}
    assert recorded == [t for node in DEMO_NODES for t in node.outputs]
    assert command[command.index("--record-idle") + 1] == "60.0"
