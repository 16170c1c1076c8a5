"""Launch Kestrel's neural_mapping node: range data and odometry in; a map, the corrected pose,
map -> odom and the place graph out.

    ros2 launch launch/neural_mapping.launch.py points:=/lidar/points odom:=/wheel/odom
    ros2 launch launch/neural_mapping.launch.py params_file:=my.param.yaml depth:=/cam/depth/image_rect \
        camera_info:=/cam/depth/camera_info

With `input: depth` in the parameter file the node reads depth and camera_info, else points.
"""

import os

from kestrel_ros.launch_support import Input, node_launch_description

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "config")


def generate_launch_description():
    inputs = [
        Input("points", description="PointCloud2 topic mapped with input: points."),
        Input("depth", description="Rectified depth image topic mapped with input: depth."),
        Input("camera_info", description="CameraInfo of the depth image."),
        Input("odom", description="nav_msgs/Odometry topic read with odom_source: topic."),
    ]
    return node_launch_description(executable="neural_mapping", params_file="neural_mapping.param.yaml",
                                   config_dir=CONFIG_DIR, inputs=inputs)
