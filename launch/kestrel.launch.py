"""Bring up the whole Kestrel stack.

    ros2 launch launch/kestrel.launch.py namespace:=/robot

Each node has its own launch file in this folder; this one includes them all and, by
default, selects Kestrel's shared-memory Fast DDS profile for large messages.
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

LAUNCH_DIR = os.path.dirname(os.path.abspath(__file__))
CONFIG_DIR = os.path.join(LAUNCH_DIR, "..", "config")
NODE_LAUNCH_FILES = ("stereo_depth.launch.py", "optical_flow.launch.py", "ssl_features.launch.py",
                     "lidar_camera_fusion.launch.py", "object_discovery.launch.py",
                     "neural_mapping.launch.py")


def generate_launch_description() -> LaunchDescription:
    namespace = LaunchConfiguration("namespace")
    actions = [
        DeclareLaunchArgument("namespace", default_value="",
                              description="Namespace for every Kestrel node."),
        DeclareLaunchArgument("use_shm_profile", default_value="true",
                              description="Use config/fastdds_shm.xml (shared memory, fast discovery)."),
        SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                               os.path.join(CONFIG_DIR, "fastdds_shm.xml"),
                               condition=IfCondition(LaunchConfiguration("use_shm_profile"))),
    ]
    for launch_file in NODE_LAUNCH_FILES:
        actions.append(IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(LAUNCH_DIR, launch_file)),
            launch_arguments={"namespace": namespace}.items(),
        ))
    return LaunchDescription(actions)
