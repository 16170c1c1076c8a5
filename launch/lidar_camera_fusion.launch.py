"""Launch Kestrel's lidar_camera_fusion node: cloud + image + camera_info in, fused outputs out.

    ros2 launch launch/lidar_camera_fusion.launch.py points:=/lidar/points \
        image:=/cam/image_rect camera_info:=/cam/camera_info
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
                              default_value=os.path.join(CONFIG_DIR, "lidar_camera_fusion.param.yaml"),
                              description="Parameter file for lidar_camera_fusion."),
        DeclareLaunchArgument("points", default_value="points",
                              description="LiDAR PointCloud2 topic (x, y, z, optional intensity)."),
        DeclareLaunchArgument("image", default_value="image",
                              description="Camera image topic matched with the cloud."),
        DeclareLaunchArgument("camera_info", default_value="camera_info",
                              description="CameraInfo topic of the image."),
    ]
    node = Node(
        package="kestrel_ros",
        executable="lidar_camera_fusion",
        name="lidar_camera_fusion",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file")],
        remappings=[("points", LaunchConfiguration("points")),
                    ("image", LaunchConfiguration("image")),
                    ("camera_info", LaunchConfiguration("camera_info"))],
        output="screen",
    )
    return LaunchDescription(arguments + [node])
