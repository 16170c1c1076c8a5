"""Launch Kestrel's ssl_features node: an image stream in, dense self-supervised features out.

    ros2 launch launch/ssl_features.launch.py namespace:=/robot image:=/cam/image_raw
"""

import os

from kestrel_ros.launch_support import Input, node_launch_description

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "config")


def generate_launch_description():
    inputs = [
        Input("image", description="Image topic the features are computed on."),
    ]
    return node_launch_description(executable="ssl_features", params_file="ssl_features.param.yaml",
                                   config_dir=CONFIG_DIR, inputs=inputs)
