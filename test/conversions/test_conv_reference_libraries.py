"""Results identical to cv_bridge and sensor_msgs_py where those are installed (robots,
the docker image). The PyPI wheels lack both, so these skip there."""

from __future__ import annotations

import array
import sys

import numpy as np
import pytest
from sensor_msgs.msg import Image, PointCloud2, PointField
from std_msgs.msg import Header

from kestrel_ros.conversions import pointcloud2 as kestrel_pc2
from kestrel_ros.conversions.image import ENCODINGS, image_to_numpy, numpy_to_image

CV_BRIDGE_ENCODINGS = [
    "mono8",
    "mono16",
    "rgb8",
    "bgr8",
    "rgba8",
    "bgra8",
    "rgb16",
    "bgra16",
    "8UC1",
    "8UC2",
    "8UC3",
    "8UC4",
    "8SC1",
    "16UC1",
    "16SC1",
    "16UC3",
    "32SC1",
    "32FC1",
    "32FC2",
    "32FC3",
    "32FC4",
    "64FC1",
]


def _cv_bridge():
    module = pytest.importorskip("cv_bridge", reason="cv_bridge is not installed (no PyPI wheel)")
    return module.CvBridge()


def _point_cloud2():
    return pytest.importorskip(
        "sensor_msgs_py.point_cloud2", reason="sensor_msgs_py is not installed (no PyPI wheel)"
    )


def _pixels(encoding: str, seed: int) -> np.ndarray:
    dtype, channels = ENCODINGS[encoding]
    rng = np.random.default_rng(seed)
    shape = (6, 9) if channels == 1 else (6, 9, channels)
    if dtype.kind == "f":
        arr = rng.normal(size=shape).astype(dtype)
        arr.reshape(-1)[::7] = np.nan
        return arr
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


@pytest.mark.parametrize("encoding", CV_BRIDGE_ENCODINGS)
@pytest.mark.parametrize("padded", [False, True])
def test_image_to_numpy_matches_cv_bridge(encoding: str, padded: bool) -> None:
    """Padded rows need the ROS 2 cv_bridge (ROS 1's Python bridge ignored ``step``)."""
    bridge = _cv_bridge()
    arr = _pixels(encoding, seed=1)
    dtype, channels = ENCODINGS[encoding]
    bpp = dtype.itemsize * channels
    padding = 2 * bpp if padded else 0  # cv_bridge needs step to be a whole number of pixels
    raw = np.zeros((6, 9 * bpp + padding), np.uint8)
    raw[:, : 9 * bpp] = np.ascontiguousarray(arr).view(np.uint8).reshape(6, 9 * bpp)
    msg = Image(
        height=6,
        width=9,
        encoding=encoding,
        step=raw.shape[1],
        is_bigendian=int(sys.byteorder == "big"),
    )
    msg.data = array.array("B", raw.tobytes())
    theirs = bridge.imgmsg_to_cv2(msg, desired_encoding="passthrough")
    ours = image_to_numpy(msg)
    assert ours.shape == theirs.shape
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("encoding", CV_BRIDGE_ENCODINGS)
def test_numpy_to_image_matches_cv_bridge(encoding: str) -> None:
    bridge = _cv_bridge()
    arr = _pixels(encoding, seed=2)
    theirs = bridge.cv2_to_imgmsg(arr, encoding=encoding)
    ours = numpy_to_image(arr, encoding)
    assert (ours.height, ours.width, ours.encoding, ours.step) == (
        theirs.height,
        theirs.width,
        theirs.encoding,
        theirs.step,
    )
    assert bool(ours.is_bigendian) == bool(theirs.is_bigendian)
    assert bytes(ours.data) == bytes(theirs.data)


def _padded_cloud() -> PointCloud2:
    """Organized 2x5 cloud with padding inside the 32-byte points, fields of count 1."""
    dtype = np.dtype(
        {
            "names": ["x", "y", "z", "intensity", "ring"],
            "formats": ["<f4", "<f4", "<f4", "<f4", "<u2"],
            "offsets": [0, 4, 8, 16, 20],
            "itemsize": 32,
        }
    )
    rng = np.random.default_rng(3)
    points = np.zeros((2, 5), dtype)
    for name in ("x", "y", "z", "intensity"):
        points[name] = rng.normal(size=(2, 5))
    points["x"][0, 1] = np.nan
    points["ring"] = rng.integers(0, 32, (2, 5))
    return kestrel_pc2.array_to_pointcloud2(
        points, header=Header(frame_id="lidar"), is_dense=False
    )


def test_read_points_matches_sensor_msgs_py() -> None:
    pc2 = _point_cloud2()
    cloud = _padded_cloud()
    for kwargs in (
        {},
        {"field_names": ["x", "y", "z"]},
        {"field_names": ["x", "y", "z"], "skip_nans": True},
        {"field_names": ["intensity", "ring"], "uvs": [0, 3, 7]},
    ):  # (reshape_organized_cloud is left out: some sensor_msgs_py releases reshape to (W, H))
        theirs = pc2.read_points(cloud, **kwargs)
        ours = kestrel_pc2.read_points(cloud, **kwargs)
        assert ours.shape == theirs.shape, kwargs
        assert ours.dtype.names == theirs.dtype.names, kwargs
        for name in ours.dtype.names:
            np.testing.assert_array_equal(ours[name], theirs[name], err_msg=f"{name} {kwargs}")


def test_read_points_numpy_matches_sensor_msgs_py() -> None:
    pc2 = _point_cloud2()
    cloud = _padded_cloud()
    for kwargs in (
        {"field_names": ["x", "y", "z"]},
        {"field_names": ["x", "intensity"], "skip_nans": True},
    ):
        theirs = pc2.read_points_numpy(cloud, **kwargs)
        ours = kestrel_pc2.read_points_numpy(cloud, **kwargs)
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)


def test_dtype_from_fields_matches_sensor_msgs_py() -> None:
    pc2 = _point_cloud2()
    fields = [
        PointField(name="x", offset=0, datatype=PointField.FLOAT32, count=1),
        PointField(name="normal", offset=4, datatype=PointField.FLOAT32, count=3),
        PointField(name="", offset=16, datatype=PointField.UINT8, count=1),
    ]
    for step in (None, 24):
        assert kestrel_pc2.dtype_from_fields(fields, step) == pc2.dtype_from_fields(fields, step)


def test_create_cloud_matches_sensor_msgs_py() -> None:
    pc2 = _point_cloud2()
    header = Header(frame_id="map")
    xyz = np.random.default_rng(4).normal(size=(10, 3)).astype(np.float32)
    fields = _padded_cloud().fields
    points = np.zeros(3, kestrel_pc2.dtype_from_fields(fields, 32))
    points["intensity"] = [1.0, 2.0, 3.0]
    points["ring"] = [4, 5, 6]
    pairs = [
        (pc2.create_cloud_xyz32(header, xyz), kestrel_pc2.create_cloud_xyz32(header, xyz)),
        (
            pc2.create_cloud(header, fields, points, 32),
            kestrel_pc2.create_cloud(header, fields, points, 32),
        ),
    ]
    for theirs, ours in pairs:
        assert (ours.height, ours.width, ours.point_step, ours.row_step) == (
            theirs.height,
            theirs.width,
            theirs.point_step,
            theirs.row_step,
        )
        assert [(f.name, f.offset, f.datatype, f.count) for f in ours.fields] == [
            (f.name, f.offset, f.datatype, f.count) for f in theirs.fields
        ]
        assert bool(ours.is_dense) == bool(theirs.is_dense)
        assert bool(ours.is_bigendian) == bool(theirs.is_bigendian)
        assert bytes(ours.data) == bytes(theirs.data)
