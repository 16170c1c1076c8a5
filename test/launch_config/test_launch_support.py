"""The per-node launch files, run against recording stand-ins for ``launch`` and ``launch_ros``.

ROS 2 launch is not installed here, so these stand-ins record what the launch files ask for:
the declared arguments (with descriptions and defaults) and the node with its parameters and
remappings. The real packages load the same files in the docker image.
"""

import importlib.util
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_LAUNCH_FILES = sorted(p for p in (ROOT / "launch").glob("*.launch.py")
                           if p.name != "kestrel.launch.py")


class Recorded:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


@pytest.fixture
def fake_launch(monkeypatch):
    modules = {name: types.ModuleType(name) for name in
               ("launch", "launch.actions", "launch.substitutions", "launch_ros", "launch_ros.actions")}
    modules["launch"].LaunchDescription = lambda entities: list(entities)
    modules["launch.actions"].DeclareLaunchArgument = type("DeclareLaunchArgument", (Recorded,), {})
    modules["launch.substitutions"].LaunchConfiguration = lambda name: ("$", name)
    modules["launch_ros.actions"].Node = type("Node", (Recorded,), {})
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


@pytest.mark.parametrize("path", NODE_LAUNCH_FILES, ids=lambda p: p.name)
def test_node_launch_file_declares_described_arguments_and_remaps_its_inputs(fake_launch, path):
    entities = load(path)
    arguments = [e for e in entities if type(e).__name__ == "DeclareLaunchArgument"]
    nodes = [e for e in entities if type(e).__name__ == "Node"]
    assert len(nodes) == 1
    node = nodes[0].kwargs
    executable = path.name.removesuffix(".launch.py")
    assert node["executable"] == node["name"] == executable
    assert node["namespace"] == ("$", "namespace")
    assert node["parameters"] == [("$", "params_file")]
    declared = {a.args[0]: a.kwargs for a in arguments}
    assert {"namespace", "params_file"} <= set(declared)
    assert all(kwargs["description"] for kwargs in declared.values())
    assert Path(declared["params_file"]["default_value"]).resolve() == \
        (ROOT / "config" / f"{executable}.param.yaml").resolve()
    # Every input argument remaps at least one topic, by default onto itself.
    inputs = set(declared) - {"namespace", "params_file"}
    remapped_from = {value[0][1] if isinstance(value, list) else value[1]
                     for _, value in node["remappings"]}
    assert inputs == remapped_from


def test_namespace_style_inputs_remap_each_topic_under_the_given_namespace(fake_launch):
    entities = load(ROOT / "launch" / "stereo_depth.launch.py")
    node = next(e for e in entities if type(e).__name__ == "Node").kwargs
    assert dict(node["remappings"]) == {
        "left/image_rect": [("$", "left_ns"), "/image_rect"],
        "left/camera_info": [("$", "left_ns"), "/camera_info"],
        "right/image_rect": [("$", "right_ns"), "/image_rect"],
        "right/camera_info": [("$", "right_ns"), "/camera_info"],
    }
