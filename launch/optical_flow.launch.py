"""Launch Kestrel's optical_flow node: an image stream in, dense flow between frames out.

    ros2 launch launch/optical_flow.launch.py namespace:=/robot image:=/cam/image_raw
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "config")


def generate_launch_description() -> LaunchDescription:
    arguments = [
        DeclareLaunchArgument("namespace", default_value="",
                              description="Namespace of the node and its outputs."),
        DeclareLaunchArgument("params_file",
                              default_value=os.path.join(CONFIG_DIR, "optical_flow.param.yaml"),
                              description="Parameter file for optical_flow."),
        DeclareLaunchArgument("image", default_value="image",
                              description="Image topic the flow is computed on."),
    ]
    node = Node(
        package="kestrel_ros",
        executable="optical_flow",
        name="optical_flow",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file")],
        remappings=[("image", LaunchConfiguration("image"))],
        output="screen",
    )
    return LaunchDescription(arguments + [node])
