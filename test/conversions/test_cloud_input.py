"""Point-cloud input of nodes: every cloud problem becomes one dropped-frame cause."""

from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import PointCloud2

from kestrel_ros.cloud_input import read_xyz, split_finite
from kestrel_ros.conversions.pointcloud2 import array_to_pointcloud2, make_xyz_intensity_cloud
from kestrel_ros.diagnostics import BadInput


def test_xyz_of_a_cloud_with_extra_fields_and_nan():
    points = np.arange(15, dtype=np.float32).reshape(5, 3)
    points[2, 1] = np.nan
    xyz = read_xyz(make_xyz_intensity_cloud(points, np.ones(5, np.float32)))
    np.testing.assert_array_equal(xyz, points)
    finite, dropped = split_finite(xyz)
    np.testing.assert_array_equal(finite, points[[0, 1, 3, 4]])
    assert dropped == 1


@pytest.mark.parametrize("cloud, cause", [
    (PointCloud2(), "empty_cloud"),
    (array_to_pointcloud2(np.zeros(4, np.dtype([("a", np.float32), ("b", np.float32)]))), "cloud_without_xyz"),
])
def test_bad_clouds(cloud, cause):
    with pytest.raises(BadInput) as raised:
        read_xyz(cloud)
    assert raised.value.cause == cause


def test_truncated_data_is_a_layout_error():
    cloud = make_xyz_intensity_cloud(np.zeros((4, 3), np.float32), np.zeros(4, np.float32))
    cloud.data = cloud.data[:10]
    with pytest.raises(BadInput) as raised:
        read_xyz(cloud)
    assert raised.value.cause == "cloud_without_xyz"


def test_all_nan_points():
    with pytest.raises(BadInput) as raised:
        split_finite(np.full((3, 3), np.nan, np.float32))
    assert raised.value.cause == "no_finite_points"
