"""The launch description every per-node launch file in ``launch/`` builds.

Each node gets the same arguments - ``namespace``, ``params_file`` (default
``config/<executable>.param.yaml``) and one argument per input it lets users remap - and one
``launch_ros`` Node with those parameters and remappings. The launch files only say what is
particular to their node::

    node_launch_description(executable="optical_flow", params_file="optical_flow.param.yaml",
                            config_dir=CONFIG_DIR,
                            inputs=[Input("image", description="Image topic of the flow.")])

``launch`` and ``launch_ros`` are imported by the function, so this module imports where ROS 2
launch is not installed (the static launch tests read the launch files without running them).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Input:
    """A launch argument that remaps one of the node's topics.

    Attributes:
        name: the argument's name, and the node topic it remaps unless ``remaps`` says otherwise.
        description: shown by ``ros2 launch ... --show-args``.
        default: the argument's default (default: ``name``, i.e. no remapping).
        remaps: ``(node topic, suffix)`` pairs remapped to ``<argument value><suffix>``; for
            namespace-style arguments such as ``left_ns`` -> ``left/image_rect``.
    """

    name: str
    description: str
    default: str | None = None
    remaps: tuple[tuple[str, str], ...] = ()


def node_launch_description(executable: str, params_file: str, config_dir: str,
                            inputs: Sequence[Input] = ()):
    """``LaunchDescription`` with the standard arguments and one Kestrel node."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    arguments = [
        DeclareLaunchArgument("namespace", default_value="",
                              description="Namespace of the node and its outputs."),
        DeclareLaunchArgument("params_file", default_value=os.path.join(config_dir, params_file),
                              description=f"Parameter file for {executable}."),
    ]
    remappings = []
    for item in inputs:
        arguments.append(DeclareLaunchArgument(item.name, default_value=item.default or item.name,
                                               description=item.description))
        value = LaunchConfiguration(item.name)
        if item.remaps:
            remappings += [(topic, [value, suffix]) for topic, suffix in item.remaps]
        else:
            remappings.append((item.name, value))
    node = Node(package="kestrel_ros", executable=executable, name=executable,
                namespace=LaunchConfiguration("namespace"),
                parameters=[LaunchConfiguration("params_file")],
                remappings=remappings, output="screen")
    return LaunchDescription(arguments + [node])
