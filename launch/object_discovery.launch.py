"""Launch Kestrel's object_discovery node: an image stream in, class-agnostic objects out.

    ros2 launch launch/object_discovery.launch.py namespace:=/robot image:=/cam/image_raw
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
                              default_value=os.path.join(CONFIG_DIR, "object_discovery.param.yaml"),
                              description="Parameter file for object_discovery."),
        DeclareLaunchArgument("image", default_value="image",
                              description="Image topic objects are discovered in."),
    ]
    node = Node(
        package="kestrel_ros",
        executable="object_discovery",
        name="object_discovery",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file")],
        remappings=[("image", LaunchConfiguration("image"))],
        output="screen",
    )
    return LaunchDescription(arguments + [node])
