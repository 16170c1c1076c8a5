from setuptools import find_packages, setup

PACKAGE = "kestrel_core"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    # Shipped small models and their training records (see kestrel_core/weights).
    package_data={PACKAGE: ["weights/*.pt", "weights/*.md"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["numpy", "torch", "opencv-python-headless", "scipy", "numba"],
    zip_safe=True,
    maintainer="Kestrel developers",
    description="Kestrel perception algorithms (torch, numpy); free of ROS.",
    license="Apache-2.0",
)
