"""Launch Kestrel's stereo_depth node: rectified stereo in, disparity, depth and points out.

    ros2 launch launch/stereo_depth.launch.py namespace:=/robot/stereo left_ns:=/cam/left
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
                              default_value=os.path.join(CONFIG_DIR, "stereo_depth.param.yaml"),
                              description="Parameter file for stereo_depth."),
        DeclareLaunchArgument("left_ns", default_value="left",
                              description="Namespace of the left camera's image_rect and camera_info."),
        DeclareLaunchArgument("right_ns", default_value="right",
                              description="Namespace of the right camera's image_rect and camera_info."),
    ]
    left, right = LaunchConfiguration("left_ns"), LaunchConfiguration("right_ns")
    node = Node(
        package="kestrel_ros",
        executable="stereo_depth",
        name="stereo_depth",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file")],
        remappings=[
            ("left/image_rect", [left, "/image_rect"]),
            ("left/camera_info", [left, "/camera_info"]),
            ("right/image_rect", [right, "/image_rect"]),
            ("right/camera_info", [right, "/camera_info"]),
        ],
        output="screen",
    )
    return LaunchDescription(arguments + [node])
