"""sensor_msgs/PointCloud2 <-> structured arrays: layouts, byte order, colours, compat names."""

from __future__ import annotations

import array
import importlib
import sys
import types

import numpy as np
import pytest
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from kestrel_ros.conversions import point_cloud2_compat
from kestrel_ros.conversions import pointcloud2 as pc2
from kestrel_ros.conversions.pointcloud2 import (
    DATATYPES,
    PointCloudLayoutError,
    array_to_pointcloud2,
    create_cloud,
    create_cloud_xyz32,
    dtype_from_fields,
    fields_from_dtype,
    make_xyz_intensity_cloud,
    make_xyz_rgb_cloud,
    point_dtype,
    pointcloud2_to_array,
    read_points,
    read_points_numpy,
    rgb_float_to_uint8,
    rgb_uint8_to_float,
    xyz_array,
)

HOST_BIG = sys.byteorder == "big"

# A deliberately awkward layout: fields out of offset order, a 3-vector (count > 1),
# unaligned 16-bit ring, and 7 bytes of padding at the end of each 40-byte point.
AWKWARD_FIELDS = [
    ("intensity", 0, PointField.FLOAT32, 1),
    ("ring", 4, PointField.UINT16, 1),
    ("x", 9, PointField.FLOAT32, 1),  # unaligned
    ("y", 13, PointField.FLOAT32, 1),
    ("z", 17, PointField.FLOAT32, 1),
    ("normal", 21, PointField.FLOAT32, 3),
    ("t", 6, PointField.INT8, 1),
]
AWKWARD_STEP = 40


def point_fields(spec: list[tuple[str, int, int, int]]) -> list[PointField]:
    return [PointField(name=n, offset=o, datatype=d, count=c) for n, o, d, c in spec]


def expected_points(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "intensity": rng.random(n).astype(np.float32),
        "ring": rng.integers(0, 128, n).astype(np.uint16),
        "x": rng.normal(size=n).astype(np.float32),
        "y": rng.normal(size=n).astype(np.float32),
        "z": rng.normal(size=n).astype(np.float32),
        "normal": rng.normal(size=(n, 3)).astype(np.float32),
        "t": rng.integers(-128, 127, n).astype(np.int8),
    }


def hand_built_cloud(
    values: dict[str, np.ndarray],
    height: int,
    width: int,
    row_padding: int = 0,
    bigendian: bool = HOST_BIG,
    spec: list[tuple[str, int, int, int]] = AWKWARD_FIELDS,
    point_step: int = AWKWARD_STEP,
) -> PointCloud2:
    """Write every field's bytes at its offset into a garbage-filled buffer, row by row."""
    order = ">" if bigendian else "<"
    row_step = width * point_step + row_padding
    raw = np.full((height, row_step), 0xEE, dtype=np.uint8)
    n = height * width
    for name, offset, datatype, count in spec:
        item = DATATYPES[datatype].newbyteorder(order)
        field_bytes = values[name].astype(item).reshape(n, count * item.itemsize // item.itemsize)
        as_bytes = (
            np.ascontiguousarray(field_bytes)
            .view(np.uint8)
            .reshape(height, width, count * item.itemsize)
        )
        points = raw[:, : width * point_step].reshape(height, width, point_step)
        points[:, :, offset : offset + count * item.itemsize] = as_bytes
    msg = PointCloud2(
        height=height,
        width=width,
        point_step=point_step,
        row_step=row_step,
        is_bigendian=bigendian,
        is_dense=True,
    )
    msg.fields = point_fields(spec)
    msg.data = array.array("B", raw.tobytes())
    return msg


def assert_fields_equal(
    cloud: np.ndarray, values: dict[str, np.ndarray], shape: tuple[int, ...]
) -> None:
    assert cloud.shape == shape
    for name, expected in values.items():
        np.testing.assert_array_equal(
            cloud[name], expected.reshape(shape + expected.shape[1:]), err_msg=name
        )


def shares_message_buffer(arr: np.ndarray, msg: PointCloud2) -> bool:
    return np.shares_memory(arr, np.frombuffer(msg.data, dtype=np.uint8))


# --- reading -------------------------------------------------------------------------------------


def test_awkward_layout_unorganized_zero_copy() -> None:
    values = expected_points(11)
    msg = hand_built_cloud(values, height=1, width=11)
    cloud = pointcloud2_to_array(msg)
    assert cloud.dtype.itemsize == AWKWARD_STEP
    assert cloud.dtype.names == ("intensity", "ring", "x", "y", "z", "normal", "t")
    assert cloud.dtype["normal"].shape == (3,)
    assert_fields_equal(cloud, values, (11,))
    assert shares_message_buffer(cloud, msg)
    assert not cloud.flags.writeable


@pytest.mark.parametrize("row_padding", [0, 3, 64])
def test_awkward_layout_organized_with_row_padding(row_padding: int) -> None:
    values = expected_points(4 * 6, seed=1)
    msg = hand_built_cloud(values, height=4, width=6, row_padding=row_padding)
    cloud = pointcloud2_to_array(msg)
    assert_fields_equal(cloud, values, (4, 6))
    assert shares_message_buffer(cloud, msg)
    xyz = xyz_array(cloud)
    assert xyz.shape == (4, 6, 3) and xyz.dtype == np.float32
    np.testing.assert_array_equal(xyz[..., 1], values["y"].reshape(4, 6))


@pytest.mark.parametrize("organized", [False, True])
def test_foreign_byte_order_is_swapped(organized: bool) -> None:
    height, width = (3, 5) if organized else (1, 15)
    values = expected_points(15, seed=2)
    msg = hand_built_cloud(values, height, width, row_padding=2, bigendian=not HOST_BIG)
    cloud = pointcloud2_to_array(msg)
    assert_fields_equal(cloud, values, (3, 5) if organized else (15,))
    assert all(cloud.dtype[name].base.isnative for name in cloud.dtype.names)
    assert not cloud.flags.writeable


def test_big_endian_known_bytes() -> None:
    msg = PointCloud2(height=1, width=1, point_step=6, row_step=6, is_bigendian=True)
    msg.fields = point_fields([("x", 0, PointField.FLOAT32, 1), ("ring", 4, PointField.UINT16, 1)])
    msg.data = array.array("B", np.array([2.5], ">f4").tobytes() + bytes([0x01, 0x02]))
    cloud = pointcloud2_to_array(msg)
    assert cloud["x"][0] == np.float32(2.5)
    assert cloud["ring"][0] == 0x0102


def test_round_trip_keeps_layout_and_values() -> None:
    values = expected_points(6 * 2, seed=3)
    msg = hand_built_cloud(values, height=2, width=6, row_padding=5)
    cloud = pointcloud2_to_array(msg)
    out = array_to_pointcloud2(cloud, header=Header(frame_id="lidar"))
    assert (out.height, out.width, out.point_step) == (2, 6, AWKWARD_STEP)
    assert out.row_step == 6 * AWKWARD_STEP
    assert out.header.frame_id == "lidar"
    assert out.is_bigendian == HOST_BIG
    assert [(f.name, f.offset, f.datatype, f.count) for f in out.fields] == AWKWARD_FIELDS
    assert_fields_equal(pointcloud2_to_array(out), values, (2, 6))


def test_unorganized_and_organized_shapes() -> None:
    dtype = np.dtype([("x", np.float32), ("y", np.float32), ("z", np.float32)])
    flat = np.zeros(12, dtype)
    grid = np.zeros((3, 4), dtype)
    msg_flat, msg_grid = array_to_pointcloud2(flat), array_to_pointcloud2(grid)
    assert (msg_flat.height, msg_flat.width) == (1, 12)
    assert (msg_grid.height, msg_grid.width) == (3, 4)
    assert pointcloud2_to_array(msg_flat).shape == (12,)
    assert pointcloud2_to_array(msg_grid).shape == (3, 4)
    assert xyz_array(msg_flat).shape == (12, 3)
    assert xyz_array(msg_grid).shape == (3, 4, 3)


def test_is_dense_computed_from_xyz() -> None:
    dtype = np.dtype(
        [("x", np.float32), ("y", np.float32), ("z", np.float32), ("intensity", np.float32)]
    )
    points = np.zeros(4, dtype)
    assert array_to_pointcloud2(points).is_dense
    points["intensity"][0] = np.nan  # not a coordinate
    assert array_to_pointcloud2(points).is_dense
    points["y"][2] = np.inf
    assert not array_to_pointcloud2(points).is_dense
    points["y"][2] = 0.0
    points["z"][3] = np.nan
    assert not array_to_pointcloud2(points).is_dense
    assert array_to_pointcloud2(points, is_dense=True).is_dense  # caller's word wins
    other = np.zeros(3, [("range", np.float32), ("ring", np.uint16)])
    other["range"][1] = np.nan
    assert not array_to_pointcloud2(other).is_dense


@pytest.mark.parametrize(
    "dtype",
    [
        np.dtype([("x", np.float32), ("y", np.float32), ("z", np.float32)]),
        np.dtype(
            {
                "names": ["x", "y", "z", "rgb"],
                "formats": ["<f4"] * 4,
                "offsets": [0, 4, 8, 16],
                "itemsize": 32,
            }
        ),
    ],
)
def test_empty_cloud_round_trip(dtype: np.dtype) -> None:
    msg = array_to_pointcloud2(np.zeros(0, dtype), frame_id="map")
    assert (msg.height, msg.width, len(msg.data)) == (1, 0, 0)
    assert msg.is_dense
    cloud = pointcloud2_to_array(msg)
    assert cloud.shape == (0,) and cloud.dtype == dtype
    assert xyz_array(cloud).shape == (0, 3)
    assert xyz_array(cloud, skip_nans=True).shape == (0, 3)
    assert read_points_numpy(msg, ["x", "y", "z"]).shape == (0, 3)
    empty_rgb = make_xyz_rgb_cloud(np.zeros((0, 3)), np.zeros((0, 3), np.uint8))
    assert pointcloud2_to_array(empty_rgb).shape == (0,)
    assert pointcloud2_to_array(PointCloud2()).shape == (0,)  # default message


def test_xyz_array_skip_nans() -> None:
    dtype = np.dtype([("x", np.float32), ("y", np.float32), ("z", np.float32)])
    grid = np.zeros((2, 2), dtype)
    grid["x"] = [[1, 2], [3, 4]]
    grid["z"][0, 1] = np.nan
    grid["y"][1, 0] = -np.inf
    kept = xyz_array(grid, skip_nans=True)
    np.testing.assert_array_equal(kept, [[1, 0, 0], [4, 0, 0]])
    full = xyz_array(grid)
    assert full.shape == (2, 2, 3) and np.isnan(full[0, 1, 2])
    with pytest.raises(PointCloudLayoutError, match="no z field"):
        xyz_array(np.zeros(2, [("x", np.float32), ("y", np.float32)]))


def test_writer_passes_strict_field_checks(strict_field_checks: None) -> None:
    xyz = np.arange(12, dtype=np.float32).reshape(4, 3)
    msg = make_xyz_intensity_cloud(
        xyz, np.arange(4, dtype=np.float32), header=Header(frame_id="f")
    )
    assert msg._check_fields
    np.testing.assert_array_equal(xyz_array(msg), xyz)
    assert create_cloud_xyz32(Header(), xyz)._check_fields


# --- errors --------------------------------------------------------------------------------------


def test_layout_errors() -> None:
    values = expected_points(4)
    msg = hand_built_cloud(values, 1, 4)
    msg.data = msg.data[:-1]
    with pytest.raises(PointCloudLayoutError, match="needs 160 data bytes, got 159"):
        pointcloud2_to_array(msg)
    msg = hand_built_cloud(values, 2, 2)
    msg.row_step = 79
    with pytest.raises(PointCloudLayoutError, match="row_step 79"):
        pointcloud2_to_array(msg)
    msg = hand_built_cloud(values, 1, 4)
    msg.point_step = 24  # 'normal' ends at byte 33
    msg.row_step = 96
    with pytest.raises(PointCloudLayoutError, match="fields end at byte 33 but point_step is 24"):
        pointcloud2_to_array(msg)
    msg = hand_built_cloud(values, 1, 4)
    msg.fields[0].datatype = 9
    with pytest.raises(PointCloudLayoutError, match="unknown datatype 9"):
        pointcloud2_to_array(msg)
    msg = hand_built_cloud(values, 1, 4)
    msg.fields[1].name = "x"
    with pytest.raises(PointCloudLayoutError, match="invalid PointCloud2 fields"):
        pointcloud2_to_array(msg)


def test_writer_errors() -> None:
    with pytest.raises(PointCloudLayoutError, match="structured"):
        array_to_pointcloud2(np.zeros((3, 3), np.float32))
    with pytest.raises(PointCloudLayoutError, match="int64"):
        array_to_pointcloud2(np.zeros(3, [("x", np.float32), ("stamp", np.int64)]))
    with pytest.raises(PointCloudLayoutError, match="shape"):
        array_to_pointcloud2(np.zeros((1, 2, 3), [("x", np.float32)]))


def test_datatype_table_and_dtype_round_trip() -> None:
    assert [DATATYPES[code] for code in range(1, 9)] == [
        np.int8,
        np.uint8,
        np.int16,
        np.uint16,
        np.int32,
        np.uint32,
        np.float32,
        np.float64,
    ]
    fields = point_fields(AWKWARD_FIELDS)
    dtype = point_dtype(fields, AWKWARD_STEP)
    assert dtype.itemsize == AWKWARD_STEP
    assert [
        (f.name, f.offset, f.datatype, f.count) for f in fields_from_dtype(dtype)
    ] == AWKWARD_FIELDS
    assert point_dtype(fields).itemsize == 33  # default: end of the last field
    zero_count = point_dtype(
        [PointField(name="x", offset=0, datatype=PointField.FLOAT64, count=0)]
    )
    assert zero_count["x"] == np.float64
    unnamed = point_dtype([PointField(name="", offset=0, datatype=PointField.UINT8, count=1)])
    assert unnamed.names == ("unnamed_field_0",)


def test_sensor_msgs_py_style_dtype_splits_count() -> None:
    dtype = dtype_from_fields(point_fields(AWKWARD_FIELDS), AWKWARD_STEP)
    assert dtype.names == (
        "intensity",
        "ring",
        "x",
        "y",
        "z",
        "normal_0",
        "normal_1",
        "normal_2",
        "t",
    )
    assert [dtype.fields[f"normal_{k}"][1] for k in range(3)] == [21, 25, 29]
    assert dtype.itemsize == AWKWARD_STEP
    assert dtype_from_fields(point_fields(AWKWARD_FIELDS)).itemsize == 33


# --- colours and helpers -------------------------------------------------------------------------


def test_rgb_packing_known_values() -> None:
    packed = rgb_uint8_to_float(np.array([[255, 0, 128], [1, 2, 3]], np.uint8))
    assert packed.dtype == np.float32
    np.testing.assert_array_equal(packed.view(np.uint32), [0x00FF0080, 0x00010203])
    from_bits = np.array([0x00FF0080, 0x00010203, 0x00FFFFFF, 0], np.uint32)
    np.testing.assert_array_equal(
        rgb_float_to_uint8(from_bits.view(np.float32)),
        [[255, 0, 128], [1, 2, 3], [255, 255, 255], [0, 0, 0]],
    )
    np.testing.assert_array_equal(
        rgb_float_to_uint8(from_bits), rgb_float_to_uint8(from_bits.view(np.float32))
    )
    with pytest.raises(ValueError):
        rgb_float_to_uint8(np.zeros(2, np.float64))
    with pytest.raises(ValueError):
        rgb_uint8_to_float(np.zeros((2, 4), np.uint8))


def test_rgb_round_trip_all_values() -> None:
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)
    rgb[0, :4] = [
        [0, 0, 0],
        [0, 0, 1],
        [255, 255, 255],
        [0, 255, 0],
    ]  # incl. denormal bit patterns
    np.testing.assert_array_equal(rgb_float_to_uint8(rgb_uint8_to_float(rgb)), rgb)


@pytest.mark.parametrize("shape", [(7,), (3, 5)])
def test_xyz_rgb_cloud(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(5)
    xyz = rng.normal(size=shape + (3,))  # float64 in: stored as float32
    rgb = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    header = Header(frame_id="camera")
    msg = make_xyz_rgb_cloud(xyz, rgb, header)
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ("x", 0, 7, 1),
        ("y", 4, 7, 1),
        ("z", 8, 7, 1),
        ("rgb", 12, 7, 1),
    ]
    assert msg.point_step == 16 and msg.header.frame_id == "camera"
    assert (msg.height, msg.width) == ((1, 7) if len(shape) == 1 else shape)
    cloud = pointcloud2_to_array(msg)
    np.testing.assert_array_equal(xyz_array(cloud), xyz.astype(np.float32))
    np.testing.assert_array_equal(rgb_float_to_uint8(cloud["rgb"]), rgb)
    with pytest.raises(ValueError):
        make_xyz_rgb_cloud(xyz, rgb[..., :2])


def test_xyz_intensity_cloud() -> None:
    xyz = np.array([[1, 2, 3], [np.nan, 0, 0]], np.float32)
    intensity = np.array([0.5, 7.0], np.float32)
    msg = make_xyz_intensity_cloud(xyz, intensity, frame_id="velodyne")
    assert [f.name for f in msg.fields] == ["x", "y", "z", "intensity"]
    assert not msg.is_dense
    assert msg.header.frame_id == "velodyne"
    cloud = pointcloud2_to_array(msg)
    np.testing.assert_array_equal(cloud["intensity"], intensity)
    np.testing.assert_array_equal(xyz_array(cloud, skip_nans=True), [[1, 2, 3]])
    with pytest.raises(ValueError, match="intensity must have shape"):
        make_xyz_intensity_cloud(xyz, np.zeros(3, np.float32))


# --- sensor_msgs_py names ------------------------------------------------------------------------


def test_read_points_and_numpy() -> None:
    values = expected_points(6, seed=6)
    values["x"][2] = np.nan
    msg = hand_built_cloud(values, height=2, width=3, row_padding=4)
    msg.is_dense = False
    xyz = read_points_numpy(msg, field_names=["x", "y", "z"])
    assert xyz.shape == (6, 3) and xyz.dtype == np.float32
    np.testing.assert_array_equal(xyz[:, 1], values["y"])
    kept = read_points_numpy(msg, ["x", "y", "z"], skip_nans=True)
    assert kept.shape == (5, 3)
    np.testing.assert_array_equal(kept[:, 2], np.delete(values["z"], 2))
    normals = read_points_numpy(msg, ["normal_0", "normal_1", "normal_2"])
    np.testing.assert_array_equal(normals, values["normal"])
    assert read_points_numpy(msg, ["x", "y"], reshape_organized_cloud=True).shape == (2, 3, 2)
    with pytest.raises(PointCloudLayoutError, match="one datatype"):
        read_points_numpy(msg, ["x", "ring"])
    with pytest.raises(PointCloudLayoutError, match="no field"):
        read_points(msg, ["w"])
    with pytest.raises(PointCloudLayoutError, match="no field"):
        read_points(msg, ["normal"])  # sensor_msgs_py naming: normal_0..2
    structured = read_points(msg, ["ring", "t"], uvs=[1, 5])
    np.testing.assert_array_equal(structured["ring"], values["ring"][[1, 5]])
    np.testing.assert_array_equal(
        read_points(msg, ["t"], uvs=np.array([4, 0]))["t"], values["t"][[4, 0]]
    )
    # NaN is looked for in the selected fields only; uvs index the points left after
    # skip_nans (point 2 has x = NaN and is dropped).
    np.testing.assert_array_equal(
        read_points(msg, ["ring"], skip_nans=True, uvs=[2])["ring"], values["ring"][[2]]
    )
    np.testing.assert_array_equal(
        read_points(msg, ["x", "ring"], skip_nans=True, uvs=[2])["ring"], values["ring"][[3]]
    )
    assert read_points(msg, reshape_organized_cloud=True).shape == (2, 3)
    assert read_points(msg).shape == (6,)
    with pytest.raises(PointCloudLayoutError, match="cannot reshape"):
        read_points(msg, skip_nans=True, reshape_organized_cloud=True)
    msg.is_dense = True  # trusted, as sensor_msgs_py does: nothing is skipped
    assert read_points_numpy(msg, ["x", "y", "z"], skip_nans=True).shape == (6, 3)


def test_create_cloud_from_structured_and_plain() -> None:
    fields = point_fields(
        [
            ("x", 0, PointField.FLOAT32, 1),
            ("y", 4, PointField.FLOAT32, 1),
            ("z", 8, PointField.FLOAT32, 1),
            ("intensity", 16, PointField.FLOAT32, 1),
        ]
    )
    plain = np.arange(20, dtype=np.float32).reshape(5, 4)
    header = Header(frame_id="base")
    msg = create_cloud(header, fields, plain)
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (1, 5, 20, 100)
    assert not msg.is_dense  # as sensor_msgs_py
    np.testing.assert_array_equal(read_points_numpy(msg), plain)
    structured = np.zeros(
        5, [("intensity", np.float64), ("x", np.float32), ("y", np.float32), ("z", np.float32)]
    )
    for i, name in enumerate(["x", "y", "z", "intensity"]):
        structured[name] = plain[:, i]
    again = create_cloud(header, fields, structured)
    assert bytes(again.data) == bytes(msg.data)
    assert len(create_cloud(header, fields, np.zeros((0, 4), np.float32)).data) == 0
    mixed_fields = point_fields(
        [("x", 0, PointField.FLOAT32, 1), ("ring", 4, PointField.UINT16, 1)]
    )
    mixed = create_cloud(header, mixed_fields, np.array([[1.5, 7], [2.5, 9]]))
    np.testing.assert_array_equal(read_points(mixed)["ring"], [7, 9])
    grid = np.zeros(
        (2, 3),
        [("x", np.float32), ("y", np.float32), ("z", np.float32), ("intensity", np.float32)],
    )
    grid["intensity"] = np.arange(6).reshape(2, 3)
    organized = create_cloud(header, fields, grid)
    assert (organized.height, organized.width, organized.point_step) == (2, 3, 20)
    np.testing.assert_array_equal(pointcloud2_to_array(organized)["intensity"], grid["intensity"])
    with pytest.raises(PointCloudLayoutError, match="no field"):
        create_cloud(header, fields, np.zeros(2, [("x", np.float32)]))
    with pytest.raises(PointCloudLayoutError, match=r"\(N, 4\)"):
        create_cloud(header, fields, np.zeros((2, 3), np.float32))
    xyz_msg = create_cloud_xyz32(header, plain[:, :3])
    assert xyz_msg.point_step == 12
    np.testing.assert_array_equal(read_points_numpy(xyz_msg), plain[:, :3])


def test_compat_selects_stand_in_without_sensor_msgs_py(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        monkeypatch.setitem(sys.modules, "sensor_msgs_py", None)  # makes the import fail
        module = importlib.reload(point_cloud2_compat)
        assert not module.USING_SENSOR_MSGS_PY
        assert module.point_cloud2 is pc2
        assert module.read_points_numpy is pc2.read_points_numpy
        assert module.create_cloud is pc2.create_cloud
        assert module.create_cloud_xyz32 is pc2.create_cloud_xyz32
    finally:
        monkeypatch.undo()
        importlib.reload(point_cloud2_compat)


def test_compat_prefers_sensor_msgs_py(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("sensor_msgs_py.point_cloud2")
    for name in (
        "read_points",
        "read_points_numpy",
        "create_cloud",
        "create_cloud_xyz32",
        "dtype_from_fields",
    ):
        setattr(fake, name, lambda *args, _name=name: _name)
    package = types.ModuleType("sensor_msgs_py")
    package.point_cloud2 = fake
    try:
        monkeypatch.setitem(sys.modules, "sensor_msgs_py", package)
        monkeypatch.setitem(sys.modules, "sensor_msgs_py.point_cloud2", fake)
        module = importlib.reload(point_cloud2_compat)
        assert module.USING_SENSOR_MSGS_PY
        assert module.point_cloud2 is fake
        assert module.read_points_numpy() == "read_points_numpy"
    finally:
        monkeypatch.undo()
        importlib.reload(point_cloud2_compat)
