from setuptools import find_packages, setup

PACKAGE = "kestrel_ros"
# Console scripts are named after their node, so `stereo_depth --ros-args ...` works.
NODES = {
    "stereo_depth": "kestrel_ros.nodes.stereo_depth:main",
    "optical_flow": "kestrel_ros.nodes.optical_flow:main",
    "ssl_features": "kestrel_ros.nodes.ssl_features:main",
    "lidar_camera_fusion": "kestrel_ros.nodes.lidar_camera_fusion:main",
    "object_discovery": "kestrel_ros.nodes.object_discovery:main",
    "neural_mapping": "kestrel_ros.nodes.neural_mapping:main",
}

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["numpy", "kestrel_core"],
    zip_safe=True,
    maintainer="Kestrel developers",
    description="Kestrel ROS 2 nodes and message conversions.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [f"{name} = {target}" for name, target in NODES.items()],
    },
)
