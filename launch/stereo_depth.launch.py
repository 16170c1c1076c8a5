"""Launch Kestrel's stereo_depth node: rectified stereo in, disparity, depth and points out.

    ros2 launch launch/stereo_depth.launch.py namespace:=/robot/stereo left_ns:=/cam/left
"""

import os

from kestrel_ros.launch_support import Input, node_launch_description

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "config")


def generate_launch_description():
    inputs = [
        Input("left_ns", default="left",
              description="Namespace of the left camera's image_rect and camera_info.",
              remaps=(("left/image_rect", "/image_rect"), ("left/camera_info", "/camera_info"))),
        Input("right_ns", default="right",
              description="Namespace of the right camera's image_rect and camera_info.",
              remaps=(("right/image_rect", "/image_rect"), ("right/camera_info", "/camera_info"))),
    ]
    return node_launch_description(executable="stereo_depth", params_file="stereo_depth.param.yaml",
                                   config_dir=CONFIG_DIR, inputs=inputs)
