"""The parameters a benchmarked node runs with: its params file plus ``name:=value`` overrides."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml

from kestrel_tools.paths import config_dir

# Set by the benchmark itself so that its reliable publishers match the node's subscriptions.
BENCH_OWNED = ("qos_reliability", "qos_depth")


def default_params_file(node: str) -> Path | None:
    """``config/<node>.param.yaml`` when it exists."""
    path = config_dir() / f"{node}.param.yaml"
    return path if path.is_file() else None


def parse_override(text: str) -> tuple[str, object]:
    """``"name:=value"`` -> ``(name, value)``, the value typed as YAML (as ``ros2 run -p``)."""
    name, sep, value = text.partition(":=")
    if not sep or not name.strip():
        raise ValueError(f"a parameter takes NAME:=VALUE, got {text!r}")
    if name.strip() in BENCH_OWNED:
        raise ValueError(f"{name.strip()} is set by the benchmark (RELIABLE, --qos-depth)")
    try:
        return name.strip(), yaml.safe_load(value)
    except yaml.YAMLError as err:
        raise ValueError(f"parameter {name.strip()}: cannot read {value!r}: {err}") from err


def read_params_file(path: Path) -> dict[str, object]:
    """The ``ros__parameters`` of a params file (every node section merged, in file order)."""
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not YAML: {err}") from err
    if not isinstance(content, dict):
        raise ValueError(f"{path}: expected '<node or /**>: ros__parameters: ...'")
    params: dict[str, object] = {}
    for section in content.values():
        if isinstance(section, dict) and isinstance(section.get("ros__parameters"), dict):
            params.update(section["ros__parameters"])
    return params


def effective_params(params_file: Path | None, overrides: Iterable[str]) -> dict[str, object]:
    """What the node will see: the file's values, then the overrides."""
    params = read_params_file(params_file) if params_file is not None else {}
    params.update(parse_override(text) for text in overrides)
    return params


def node_ros_args(params_file: Path | None, overrides: Iterable[str], qos_depth: int) -> list[str]:
    """``--ros-args`` for the node: the file, the overrides, then reliable QoS of ``qos_depth``."""
    args = ["--params-file", str(params_file)] if params_file is not None else []
    for text in overrides:
        parse_override(text)  # reject malformed or benchmark-owned ones
        args += ["-p", text]
    return args + ["-p", "qos_reliability:=reliable", "-p", f"qos_depth:={qos_depth}"]
