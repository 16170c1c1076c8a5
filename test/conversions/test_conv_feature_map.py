"""kestrel_interfaces FeatureMap / Embedding <-> numpy: round trips, views, layout errors."""

from __future__ import annotations

import array
import importlib

import numpy as np
import pytest
from geometry_msgs.msg import Point, Pose, Quaternion
from kestrel_interfaces.msg import Embedding, FeatureMap
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Header

from kestrel_ros.conversions.feature_map import (
    FeatureMapLayoutError,
    embedding_to_numpy,
    feature_map_to_numpy,
    numpy_to_embedding,
    numpy_to_feature_map,
)


def random_features(channels: int = 6, height: int = 4, width: int = 5,
                    seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(channels, height, width)).astype(np.float32)


@pytest.fixture
def strict_interface_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """New kestrel_interfaces messages validate every field assignment, as they do when
    ROS_PYTHON_CHECK_FIELDS=1."""
    for name in ("kestrel_interfaces.msg._feature_map", "kestrel_interfaces.msg._embedding"):
        monkeypatch.setattr(importlib.import_module(name), "ros_python_check_fields", "1")


@pytest.mark.parametrize("checked", [False, True], ids=["unchecked", "checked"])
def test_image_aligned_round_trip_keeps_values_layout_and_header(checked, request):
    if checked:
        request.getfixturevalue("strict_interface_checks")
    features = random_features()
    header = Header(frame_id="camera_optical_frame")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = numpy_to_feature_map(features, "vit_tiny@abc", stride=8, header=header)

    assert (msg.channels, msg.height, msg.width, msg.stride) == (6, 4, 5, 8)
    assert msg.resolution == 0.0 and msg.model_id == "vit_tiny@abc"
    assert msg.header.frame_id == "camera_optical_frame" and msg.header.stamp.nanosec == 345
    assert isinstance(msg.data, array.array) and msg.data.typecode == "f"
    # Row-major (C, h, w): value (c, i, j) sits at (c * h + i) * w + j.
    assert msg.data[(2 * 4 + 3) * 5 + 1] == features[2, 3, 1]
    back = feature_map_to_numpy(msg)
    assert back.shape == (6, 4, 5) and back.dtype == np.float32
    np.testing.assert_array_equal(back, features)


def test_reading_is_a_read_only_view_of_the_message_buffer():
    msg = numpy_to_feature_map(random_features(), "m", stride=16)
    view = feature_map_to_numpy(msg)
    assert not view.flags.writeable
    msg.data[0] = 42.0  # in-place change of the message buffer shows through the view
    assert view[0, 0, 0] == 42.0


def test_metric_grid_keeps_resolution_and_origin():
    origin = Pose(position=Point(x=-10.0, y=-5.0, z=0.2), orientation=Quaternion(z=1.0, w=0.0))
    features = random_features(3, 7, 2, seed=1)
    msg = numpy_to_feature_map(features, "bev", resolution=0.25, origin=origin, frame_id="map")
    assert msg.stride == 0 and msg.resolution == pytest.approx(0.25)
    assert msg.origin.position.x == -10.0 and msg.origin.orientation.z == 1.0
    assert msg.header.frame_id == "map"
    np.testing.assert_array_equal(feature_map_to_numpy(msg), features)


def test_serialized_round_trip_through_the_ros_wire_format():
    features = random_features(5, 3, 9, seed=2)
    features[0, 0, 0] = np.nan  # float32 values go over the wire bit-exactly, NaN included
    msg = numpy_to_feature_map(features, "m", stride=14)
    received = deserialize_message(serialize_message(msg), FeatureMap)
    np.testing.assert_array_equal(feature_map_to_numpy(received), features)
    assert (received.stride, received.channels, received.height, received.width) == (14, 5, 3, 9)

    vector = np.linspace(-1.0, 1.0, 192, dtype=np.float32)
    embedding = deserialize_message(serialize_message(numpy_to_embedding(vector, "m")), Embedding)
    np.testing.assert_array_equal(embedding_to_numpy(embedding), vector)
    assert embedding.model_id == "m"


@pytest.mark.parametrize("dtype", [np.float16, np.float64, ">f4"])
def test_other_float_dtypes_and_byte_orders_are_stored_as_native_float32(dtype):
    features = random_features(2, 3, 4, seed=3)
    msg = numpy_to_feature_map(features.astype(dtype), "m", stride=8)
    np.testing.assert_allclose(feature_map_to_numpy(msg), features, rtol=1e-3, atol=1e-3)


def test_non_contiguous_arrays_are_written_in_logical_order():
    hwc = random_features(4, 5, 3, seed=4)  # (h, w, C) laid out in memory
    chw = hwc.transpose(2, 0, 1)
    assert not chw.flags.c_contiguous
    msg = numpy_to_feature_map(chw, "m", stride=8)
    np.testing.assert_array_equal(feature_map_to_numpy(msg), chw)


def test_arrays_from_other_deserializers_are_read_too():
    features = random_features(2, 2, 3, seed=5)
    msg = FeatureMap(channels=2, height=2, width=3)
    msg.data = features.reshape(-1).tolist()  # a plain list, as a user might assign
    np.testing.assert_allclose(feature_map_to_numpy(msg), features)


@pytest.mark.parametrize("shape", [(2, 3), (1, 2, 3, 4)])
def test_wrong_rank_is_rejected(shape):
    with pytest.raises(FeatureMapLayoutError, match=r"\(C, h, w\)"):
        numpy_to_feature_map(np.zeros(shape, np.float32), "m", stride=8)
    with pytest.raises(FeatureMapLayoutError, match=r"\(D,\)"):
        numpy_to_embedding(np.zeros(shape, np.float32), "m")


def test_integer_arrays_stride_with_resolution_and_negative_values_are_rejected():
    with pytest.raises(FeatureMapLayoutError, match="floating-point"):
        numpy_to_feature_map(np.zeros((1, 2, 2), np.int32), "m", stride=8)
    with pytest.raises(FeatureMapLayoutError, match="not both"):
        numpy_to_feature_map(np.zeros((1, 2, 2), np.float32), "m", stride=8, resolution=0.1)
    with pytest.raises(FeatureMapLayoutError, match="negative"):
        numpy_to_feature_map(np.zeros((1, 2, 2), np.float32), "m", resolution=-0.1)


@pytest.mark.parametrize("extra", [-1, 1])
def test_data_size_mismatch_is_an_error_naming_both_sizes(extra):
    msg = numpy_to_feature_map(random_features(3, 4, 5), "m", stride=8)
    if extra > 0:
        msg.data.append(0.0)
    else:
        msg.data.pop()
    with pytest.raises(FeatureMapLayoutError, match=f"needs 60 values, data has {60 + extra}"):
        feature_map_to_numpy(msg)


def test_header_claims_more_cells_than_data_is_an_error():
    msg = numpy_to_feature_map(random_features(3, 4, 5), "m", stride=8)
    msg.height = 5
    with pytest.raises(FeatureMapLayoutError, match="needs 75 values, data has 60"):
        feature_map_to_numpy(msg)
