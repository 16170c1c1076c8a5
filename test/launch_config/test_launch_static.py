"""Static checks of launch/ and config/ that run everywhere, with or without `launch` installed.

Every executable a launch file names is a Kestrel console script, every parameter file it
names exists, and each file's keys are exactly the parameters its node declares, with
valid values. launch_pytest tests of the same files run where `launch` is installed.
"""

import ast
import importlib
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

from kestrel_ros.params import markdown_table

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
PARAM_FILES = sorted((ROOT / "config").glob("*.param.yaml"))


def console_scripts() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group="console_scripts")}


def node_params(executable: str):
    module_name = console_scripts()[executable].split(":")[0]
    return importlib.import_module(module_name).PARAMS


def launch_strings(path: Path) -> tuple[set[str], set[str], set[str]]:
    """Executables, parameter files and included launch files named in a launch file."""
    executables, params, includes = set(), set(), set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.keyword) and node.arg == "executable":
            assert isinstance(node.value, ast.Constant), f"{path.name}: executable must be a literal"
            executables.add(node.value.value)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.endswith(".param.yaml"):
                params.add(node.value)
            elif node.value.endswith(".launch.py"):
                includes.add(node.value)
    return executables, params, includes


def test_there_is_a_launch_file_per_node_and_a_stack_launch_file():
    names = {path.name for path in LAUNCH_FILES}
    assert "kestrel.launch.py" in names
    for path in LAUNCH_FILES:
        if path.name != "kestrel.launch.py":
            assert path.name in launch_strings(ROOT / "launch" / "kestrel.launch.py")[2], (
                f"kestrel.launch.py does not include {path.name}")


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_named_executables_parameter_files_and_includes_exist(path):
    executables, params, includes = launch_strings(path)
    scripts = console_scripts()
    for executable in executables:
        assert executable in scripts, f"{path.name}: no console script named {executable!r}"
        assert f"{executable}.param.yaml" in params, f"{path.name}: no params file for {executable}"
    for name in params:
        assert (ROOT / "config" / name).is_file(), f"{path.name}: config/{name} is missing"
    for name in includes:
        assert (ROOT / "launch" / name).is_file(), f"{path.name}: launch/{name} is missing"
    source = path.read_text()
    # Per-node files declare their arguments through kestrel_ros.launch_support.
    assert "DeclareLaunchArgument" in source or "node_launch_description" in source
    assert "description=" in source


@pytest.mark.parametrize("path", PARAM_FILES, ids=lambda p: p.name)
def test_parameter_file_matches_what_the_node_declares(path):
    executable = path.name.removesuffix(".param.yaml")
    document = yaml.safe_load(path.read_text())
    assert list(document) == ["/**"], "use the /** wildcard so namespaces and names can change"
    values = document["/**"]["ros__parameters"]
    specs = {spec.name: spec for spec in node_params(executable)}
    assert set(values) == set(specs), (
        f"only in file: {sorted(set(values) - set(specs))}, "
        f"only declared: {sorted(set(specs) - set(values))}")
    for name, value in values.items():
        assert specs[name].check(value) is None, specs[name].check(value)


@pytest.mark.parametrize("path", PARAM_FILES, ids=lambda p: p.name)
def test_node_readme_documents_every_parameter(path):
    """The README table rows are exactly what the node declares (name, type, default, range)."""
    executable = path.name.removesuffix(".param.yaml")
    readme = (ROOT / "src" / "kestrel_ros" / "README.md").read_text()
    for row in markdown_table(node_params(executable)).splitlines()[2:]:
        assert row in readme, f"README of {executable} lacks or misstates: {row}"


def test_launch_files_load_where_launch_is_installed():
    # Imported by submodule: the repository's own launch/ folder looks like a namespace
    # package called `launch` when the working directory is on sys.path.
    sources = pytest.importorskip("launch.launch_description_sources",
                                  reason="ROS 2 `launch` is not installed (the PyPI wheels lack it)")
    get_launch_description_from_python_launch_file = (
        sources.get_launch_description_from_python_launch_file)

    for path in LAUNCH_FILES:
        assert get_launch_description_from_python_launch_file(str(path)).entities
