from setuptools import find_packages, setup

PACKAGE = "kestrel_tools"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["numpy", "scipy", "rosbags", "PyYAML", "kestrel_core"],
    zip_safe=True,
    maintainer="Kestrel developers",
    description="Kestrel command line, metrics, demo and benchmarks.",
    license="Apache-2.0",
    entry_points={"console_scripts": ["kestrel = kestrel_tools.cli:main"]},
)
