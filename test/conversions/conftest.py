"""Fixtures shared by the conversion tests (message objects only, no ROS graph)."""

from __future__ import annotations

import importlib

import pytest

_MESSAGE_MODULES = (
    "builtin_interfaces.msg._time",
    "std_msgs.msg._header",
    "sensor_msgs.msg._image",
    "sensor_msgs.msg._camera_info",
    "sensor_msgs.msg._point_cloud2",
    "sensor_msgs.msg._point_field",
    "sensor_msgs.msg._region_of_interest",
    "stereo_msgs.msg._disparity_image",
)


@pytest.fixture
def strict_field_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make newly created messages validate every field assignment, as they do when
    ``ROS_PYTHON_CHECK_FIELDS=1`` (the generated setters read a module-level flag)."""
    for name in _MESSAGE_MODULES:
        module = importlib.import_module(name)
        assert hasattr(module, "ros_python_check_fields"), name
        monkeypatch.setattr(module, "ros_python_check_fields", "1")
