"""``sensor_msgs_py.point_cloud2`` where installed, Kestrel's stand-in otherwise.

Import the helpers from here, not from either library::

    from kestrel_ros.conversions.point_cloud2_compat import read_points_numpy

``point_cloud2`` is the module that provides them; ``USING_SENSOR_MSGS_PY`` says which one.
The stand-in (:mod:`kestrel_ros.conversions.pointcloud2`) has the same signatures and
results; it differs only in also honouring ``row_step`` padding.
"""

from __future__ import annotations

from types import ModuleType

__all__ = [
    "USING_SENSOR_MSGS_PY",
    "create_cloud",
    "create_cloud_xyz32",
    "dtype_from_fields",
    "point_cloud2",
    "read_points",
    "read_points_numpy",
]

point_cloud2: ModuleType
try:
    from sensor_msgs_py import point_cloud2
except ImportError:
    from kestrel_ros.conversions import pointcloud2 as point_cloud2

    USING_SENSOR_MSGS_PY = False
else:
    USING_SENSOR_MSGS_PY = True

read_points = point_cloud2.read_points
read_points_numpy = point_cloud2.read_points_numpy
create_cloud = point_cloud2.create_cloud
create_cloud_xyz32 = point_cloud2.create_cloud_xyz32
dtype_from_fields = point_cloud2.dtype_from_fields
