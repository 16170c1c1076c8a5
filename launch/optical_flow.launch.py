"""Launch Kestrel's optical_flow node: an image stream in, dense flow between frames out.

    ros2 launch launch/optical_flow.launch.py namespace:=/robot image:=/cam/image_raw
"""

import os

from kestrel_ros.launch_support import Input, node_launch_description

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "config")


def generate_launch_description():
    inputs = [
        Input("image", description="Image topic the flow is computed on."),
    ]
    return node_launch_description(executable="optical_flow", params_file="optical_flow.param.yaml",
                                   config_dir=CONFIG_DIR, inputs=inputs)
