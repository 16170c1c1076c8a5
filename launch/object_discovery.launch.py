"""Launch Kestrel's object_discovery node: images (and optionally a LiDAR cloud) in,
class-agnostic 2D and 3D objects out.

    ros2 launch launch/object_discovery.launch.py namespace:=/robot image:=/cam/image_raw \
        points:=/lidar/points camera_info:=/cam/camera_info
"""

import os

from kestrel_ros.launch_support import Input, node_launch_description

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "config")


def generate_launch_description():
    inputs = [
        Input("image", description="Image topic objects are discovered in."),
        Input("points", description="LiDAR PointCloud2 topic (x, y, z) for 3D objects; optional."),
        Input("camera_info", description="CameraInfo topic of the image, for late fusion of the "
                                         "3D clusters with the 2D masks; optional."),
    ]
    return node_launch_description(executable="object_discovery", params_file="object_discovery.param.yaml",
                                   config_dir=CONFIG_DIR, inputs=inputs)
