"""Static checks of the RViz 2 configs in config/rviz, driven by two tables.

config/rviz/README.md says which nodes each config shows (a config without a row there shows
the node its file is named after); src/kestrel_ros/README.md documents each node's topics
(name, direction, type). Every display topic must be documented by one of
the config's nodes, with a message type the display can draw; every config shows at least one
output of each of its nodes and sets a fixed frame. A new node's config needs no change here.
"""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RVIZ_DIR = ROOT / "config" / "rviz"
RVIZ_FILES = sorted(RVIZ_DIR.glob("*.rviz"))
NODES_README = ROOT / "src" / "kestrel_ros" / "README.md"

# Message types the default RViz 2 displays subscribe to; displays not listed are only checked
# for a documented topic.
DISPLAY_TYPES = {
    "rviz_default_plugins/Image": {"sensor_msgs/Image"},
    "rviz_default_plugins/Camera": {"sensor_msgs/Image"},
    "rviz_default_plugins/DepthCloud": {"sensor_msgs/Image"},
    "rviz_default_plugins/PointCloud2": {"sensor_msgs/PointCloud2"},
    "rviz_default_plugins/Map": {"nav_msgs/OccupancyGrid"},
    "rviz_default_plugins/Odometry": {"nav_msgs/Odometry"},
    "rviz_default_plugins/Path": {"nav_msgs/Path"},
    "rviz_default_plugins/Marker": {"visualization_msgs/Marker"},
    "rviz_default_plugins/MarkerArray": {"visualization_msgs/MarkerArray"},
    "rviz_default_plugins/PoseArray": {"geometry_msgs/PoseArray"},
    "rviz_default_plugins/LaserScan": {"sensor_msgs/LaserScan"},
}


def table_rows(lines: list[str], first_header: str) -> list[list[str]]:
    """Cells of the markdown table whose header starts with ``| first_header |``."""
    rows, inside = [], False
    for line in lines:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not inside:
            inside = line.startswith("|") and cells[0] == first_header
            continue
        if not line.startswith("|"):
            break
        if not set(cells[0]) <= set("-: "):
            rows.append(cells)
    return rows


def node_topics() -> dict[str, dict[str, tuple[str, str]]]:
    """node -> {topic: (direction, message type)} from the ``## <node>`` sections."""
    sections = re.split(r"^## ", NODES_README.read_text(), flags=re.MULTILINE)[1:]
    nodes = {}
    for section in sections:
        name, *lines = section.splitlines()
        topics = {}
        for topic, direction, kind, *_ in table_rows(lines, "topic"):
            msg_type = re.search(r"\w+_msgs/\w+", kind)
            topics[topic.strip("`")] = (direction, msg_type.group(0) if msg_type else kind)
        if topics:
            nodes[name.strip()] = topics
    return nodes


def config_table() -> dict[str, tuple[list[str], set[str]]]:
    """config file name -> (its nodes, the topics its row lists) from config/rviz/README.md."""
    rows = table_rows((RVIZ_DIR / "README.md").read_text().splitlines(), "config")
    return {config.strip("`"): ([n.strip() for n in nodes.split(",")],
                                set(re.findall(r"`([^`]+)`", topics)))
            for config, nodes, topics in rows}


def config_nodes_and_topics(path: Path) -> tuple[list[str], set[str] | None]:
    """The nodes a config shows and the topics its README row lists (None without a row)."""
    table = config_table()
    if path.name in table:
        return table[path.name]
    assert path.stem in node_topics(), (
        f"{path.name} is not named after a documented node: add a row to config/rviz/README.md")
    return [path.stem], None


def displays(entries: list[dict]) -> list[dict]:
    """Every display, groups flattened."""
    found = []
    for entry in entries:
        found.append(entry)
        found += displays(entry.get("Displays", []))
    return found


def topic_displays(path: Path) -> list[tuple[str, str, str]]:
    """(display name, class, topic) of the displays that subscribe to a topic."""
    manager = yaml.safe_load(path.read_text())["Visualization Manager"]
    result = []
    for display in displays(manager["Displays"]):
        topic = display.get("Topic")
        if isinstance(topic, dict):
            topic = topic.get("Value")
        if topic:
            result.append((display.get("Name", "?"), display["Class"], topic))
    return result


def test_the_tables_are_found():
    nodes = node_topics()
    assert {"stereo_depth", "optical_flow"} <= nodes.keys()
    assert nodes["stereo_depth"]["points"] == ("out", "sensor_msgs/PointCloud2")
    assert nodes["optical_flow"]["image"] == ("in", "sensor_msgs/Image")
    assert {"stereo_depth.rviz", "optical_flow.rviz", "kestrel.rviz"} <= config_table().keys()


def test_every_table_row_names_an_existing_config_of_documented_nodes():
    nodes = node_topics()
    for config, (config_nodes, _) in config_table().items():
        assert (RVIZ_DIR / config).is_file(), f"config/rviz/README.md lists missing {config}"
        unknown = [n for n in config_nodes if n not in nodes]
        assert not unknown, f"{config}: {unknown} have no topic table in {NODES_README.name}"


@pytest.mark.parametrize("path", RVIZ_FILES, ids=lambda p: p.name)
def test_display_topics_are_documented_with_a_type_the_display_draws(path):
    config_nodes, listed = config_nodes_and_topics(path)
    documented = {}
    for node in config_nodes:
        documented.update(node_topics()[node])
    shown = topic_displays(path)
    assert shown, f"{path.name} shows no topic"
    for name, display_class, topic in shown:
        assert not topic.startswith("/"), f"{path.name} {name}: {topic} must be relative"
        assert topic in documented, (f"{path.name} {name}: {topic} is not a topic of "
                                     f"{', '.join(config_nodes)}")
        drawable = DISPLAY_TYPES.get(display_class)
        if drawable is not None:
            assert documented[topic][1] in drawable, (
                f"{path.name} {name}: {display_class} cannot draw {documented[topic][1]}")
    assert listed is None or {topic for _, _, topic in shown} == listed, (
        f"the README row of {path.name} lists {sorted(listed)}")


@pytest.mark.parametrize("path", RVIZ_FILES, ids=lambda p: p.name)
def test_each_node_of_a_config_has_an_output_shown(path):
    config_nodes, _ = config_nodes_and_topics(path)
    shown = {topic for _, _, topic in topic_displays(path)}
    for node in config_nodes:
        outputs = {t for t, (direction, _) in node_topics()[node].items() if direction == "out"}
        assert shown & outputs, f"{path.name} shows no output of {node}"


@pytest.mark.parametrize("path", RVIZ_FILES, ids=lambda p: p.name)
def test_the_fixed_frame_is_set(path):
    options = yaml.safe_load(path.read_text())["Visualization Manager"]["Global Options"]
    frame = options.get("Fixed Frame")
    assert isinstance(frame, str) and frame.strip() and not frame.startswith("<"), frame
