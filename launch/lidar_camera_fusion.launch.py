"""Launch Kestrel's lidar_camera_fusion node: cloud + image + camera_info in, fused outputs out.

    ros2 launch launch/lidar_camera_fusion.launch.py points:=/lidar/points \
        image:=/cam/image_rect camera_info:=/cam/camera_info
"""

import os

from kestrel_ros.launch_support import Input, node_launch_description

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "config")


def generate_launch_description():
    inputs = [
        Input("points", description="LiDAR PointCloud2 topic (x, y, z, optional intensity)."),
        Input("image", description="Camera image topic matched with the cloud."),
        Input("camera_info", description="CameraInfo topic of the image."),
    ]
    return node_launch_description(executable="lidar_camera_fusion", params_file="lidar_camera_fusion.param.yaml",
                                   config_dir=CONFIG_DIR, inputs=inputs)
