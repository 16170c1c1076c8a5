"""Launch Kestrel's ssl_features node: an image stream in, dense self-supervised features out.

    ros2 launch launch/ssl_features.launch.py namespace:=/robot image:=/cam/image_raw
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
                              default_value=os.path.join(CONFIG_DIR, "ssl_features.param.yaml"),
                              description="Parameter file for ssl_features."),
        DeclareLaunchArgument("image", default_value="image",
                              description="Image topic the features are computed on."),
    ]
    node = Node(
        package="kestrel_ros",
        executable="ssl_features",
        name="ssl_features",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file")],
        remappings=[("image", LaunchConfiguration("image"))],
        output="screen",
    )
    return LaunchDescription(arguments + [node])
