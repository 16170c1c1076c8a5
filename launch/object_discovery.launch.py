"""Launch Kestrel's object_discovery node: an image stream in, class-agnostic objects out.

    ros2 launch launch/object_discovery.launch.py namespace:=/robot image:=/cam/image_raw
"""

import os

from kestrel_ros.launch_support import Input, node_launch_description

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "config")


def generate_launch_description():
    inputs = [
        Input("image", description="Image topic objects are discovered in."),
    ]
    return node_launch_description(executable="object_discovery", params_file="object_discovery.param.yaml",
                                   config_dir=CONFIG_DIR, inputs=inputs)
