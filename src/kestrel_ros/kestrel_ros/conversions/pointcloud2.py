"""``sensor_msgs/PointCloud2`` to and from numpy structured arrays.

A cloud's point layout (``fields``, ``point_step``) maps onto a numpy structured dtype with
explicit offsets and ``itemsize = point_step``, so reading is a zero-copy strided view of
``msg.data`` whatever the field order, padding or ``row_step``. Only a byte order that
differs from the host's forces a copy.

The module also provides the ``sensor_msgs_py.point_cloud2`` functions (``read_points``,
``read_points_numpy``, ``create_cloud``, ``create_cloud_xyz32``, ``dtype_from_fields``)
with the same signatures and semantics; :mod:`.point_cloud2_compat` picks the real library
when it is installed and these otherwise. The two families name a ``count > 1`` field
differently: Kestrel's own functions keep one subarray field (``normal`` of shape
``(3,)``), the sensor_msgs_py ones split it into ``normal_0``, ``normal_1``, ``normal_2``.

Colour follows PCL: ``rgb`` is a float32 field whose bits hold ``0x00RRGGBB``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from numpy.lib import recfunctions
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from kestrel_ros.conversions._buffers import (
    HOST_IS_BIGENDIAN,
    bytes_to_uint8_field,
    make_header,
    uint8_view,
)

__all__ = [
    "DATATYPES",
    "PointCloudLayoutError",
    "array_to_pointcloud2",
    "create_cloud",
    "create_cloud_xyz32",
    "dtype_from_fields",
    "fields_from_dtype",
    "point_dtype",
    "make_xyz_intensity_cloud",
    "make_xyz_rgb_cloud",
    "pointcloud2_to_array",
    "read_points",
    "read_points_numpy",
    "rgb_float_to_uint8",
    "rgb_uint8_to_float",
    "xyz_array",
]


class PointCloudLayoutError(ValueError):
    """Fields, steps and data of a PointCloud2 (or a dtype for one) do not fit together."""


#: PointField datatype constant -> numpy dtype (host byte order).
DATATYPES: dict[int, np.dtype] = {
    PointField.INT8: np.dtype(np.int8),
    PointField.UINT8: np.dtype(np.uint8),
    PointField.INT16: np.dtype(np.int16),
    PointField.UINT16: np.dtype(np.uint16),
    PointField.INT32: np.dtype(np.int32),
    PointField.UINT32: np.dtype(np.uint32),
    PointField.FLOAT32: np.dtype(np.float32),
    PointField.FLOAT64: np.dtype(np.float64),
}
_DATATYPE_OF: dict[tuple[str, int], int] = {
    (dt.kind, dt.itemsize): code for code, dt in DATATYPES.items()
}

_XYZ = ("x", "y", "z")
_UNNAMED_FIELD_PREFIX = "unnamed_field"  # field i without a name is called unnamed_field_i


def point_dtype(
    fields: Iterable[PointField],
    point_step: int | None = None,
    is_bigendian: bool = False,
) -> np.dtype:
    """Structured dtype of one point, as Kestrel's own functions read clouds.

    Args:
        fields: the cloud's PointFields. ``count > 1`` becomes a subarray field of shape
            ``(count,)``; ``count == 0`` (left unset by some drivers) is read as 1; an
            unnamed field ``i`` is called ``unnamed_field_i`` (as sensor_msgs_py does).
        point_step: the dtype's itemsize; default: the end of the last field.
        is_bigendian: byte order of the data the dtype will describe.

    Raises:
        PointCloudLayoutError: unknown datatype, duplicate names, or a field that ends
            beyond ``point_step``.
    """
    order = ">" if is_bigendian else "<"
    names, formats, offsets = [], [], []
    end = 0
    for index, field in enumerate(fields):
        try:
            base = DATATYPES[field.datatype].newbyteorder(order)
        except KeyError:
            raise PointCloudLayoutError(
                f"PointField {field.name!r} has unknown datatype {field.datatype}; "
                f"known: {sorted(DATATYPES)}"
            ) from None
        count = max(int(field.count), 1)
        names.append(field.name or f"{_UNNAMED_FIELD_PREFIX}_{index}")
        formats.append(base if count == 1 else np.dtype((base, (count,))))
        offsets.append(int(field.offset))
        end = max(end, int(field.offset) + base.itemsize * count)
    if point_step is None:
        point_step = end
    elif end > point_step:
        raise PointCloudLayoutError(
            f"fields end at byte {end} but point_step is {point_step}: "
            + ", ".join(f"{n}@{o}" for n, o in zip(names, offsets, strict=True))
        )
    try:
        return np.dtype(
            {"names": names, "formats": formats, "offsets": offsets, "itemsize": int(point_step)}
        )
    except ValueError as err:
        raise PointCloudLayoutError(f"invalid PointCloud2 fields {names}: {err}") from err


def fields_from_dtype(dtype: np.dtype) -> list[PointField]:
    """PointFields describing a structured dtype (field order and offsets kept).

    Raises:
        PointCloudLayoutError: not a structured dtype, or a field type PointField cannot
            express (e.g. bool, int64, float16, nested structures).
    """
    if dtype.names is None:
        raise PointCloudLayoutError(f"a PointCloud2 needs a structured dtype, got {dtype}")
    fields = []
    for name in dtype.names:
        field_dtype, offset = dtype.fields[name][:2]
        base, shape = field_dtype.base, field_dtype.shape
        code = _DATATYPE_OF.get((base.kind, base.itemsize))
        if code is None or base.names is not None:
            raise PointCloudLayoutError(
                f"field {name!r} has dtype {field_dtype}, which PointField cannot express; "
                "use int8/16/32, uint8/16/32, float32 or float64"
            )
        fields.append(
            PointField(
                name=name,
                offset=int(offset),
                datatype=code,
                count=int(np.prod(shape, dtype=np.int64)),
            )
        )
    return fields


def _native(dtype: np.dtype) -> np.dtype:
    """``dtype`` with every field in host byte order (offsets and itemsize kept)."""
    if dtype.names is None:
        return dtype.newbyteorder("=")
    formats = []
    for name in dtype.names:
        field_dtype = dtype.fields[name][0]
        base = field_dtype.base.newbyteorder("=")
        formats.append(base if not field_dtype.shape else np.dtype((base, field_dtype.shape)))
    return np.dtype(
        {
            "names": list(dtype.names),
            "formats": formats,
            "offsets": [dtype.fields[n][1] for n in dtype.names],
            "itemsize": dtype.itemsize,
        }
    )


def _cloud_view(msg: PointCloud2, fields: Iterable[PointField] | None = None) -> np.ndarray:
    """``(H, W)`` structured array of the points in host byte order (a view if possible).

    ``fields`` replaces ``msg.fields`` (to read the same bytes with another naming)."""
    height, width = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    dtype = point_dtype(
        msg.fields if fields is None else fields, point_step, bool(msg.is_bigendian)
    )
    if row_step < width * point_step:
        raise PointCloudLayoutError(
            f"row_step {row_step} is less than width * point_step = {width} * {point_step}"
        )
    data = uint8_view(msg.data)
    if data.size < row_step * height:
        raise PointCloudLayoutError(
            f"{width}x{height} cloud with row_step {row_step} needs {row_step * height} "
            f"data bytes, got {data.size}"
        )
    view = np.ndarray(
        shape=(height, width), dtype=dtype, buffer=data, strides=(row_step, point_step)
    )
    if bool(msg.is_bigendian) != HOST_IS_BIGENDIAN:
        native = _native(dtype)
        if native != dtype:
            view = view.astype(native)  # byte swap: the only copying path
    return view


def pointcloud2_to_array(msg: PointCloud2) -> np.ndarray:
    """Points of a PointCloud2 as a structured array.

    Returns:
        ``(H, W)`` for an organized cloud (``height > 1``), ``(N,)`` otherwise
        (``N = width``, ``0`` for an empty cloud). The dtype has one field per PointField
        (``count > 1`` as a subarray) at the message's offsets, ``itemsize = point_step``,
        in host byte order. The array is **read-only**; for a host-byte-order message it
        is a zero-copy view of ``msg.data`` (it keeps that buffer alive and shows in-place
        changes to it), otherwise a byte-swapped copy. ``.copy()`` gives a writable one.

    Raises:
        PointCloudLayoutError: inconsistent fields, steps or data size.
    """
    view = _cloud_view(msg)
    if view.shape[0] <= 1:
        view = view.reshape(-1)
    view.flags.writeable = False
    return view


def _finite_mask(arr: np.ndarray, names: Sequence[str]) -> np.ndarray:
    mask = np.ones(arr.shape, dtype=bool)
    for name in names:
        values = arr[name]
        if values.dtype.kind == "f":  # subarray fields: every element must be finite
            mask &= np.isfinite(values).all(axis=tuple(range(arr.ndim, values.ndim)))
    return mask


def _default_is_dense(arr: np.ndarray) -> bool:
    names = arr.dtype.names or ()
    checked = _XYZ if all(n in names for n in _XYZ) else names
    return bool(_finite_mask(arr, checked).all())


def array_to_pointcloud2(
    arr: np.ndarray,
    header: Header | None = None,
    frame_id: str | None = None,
    is_dense: bool | None = None,
) -> PointCloud2:
    """Build a PointCloud2 from a structured array; the bytes are copied once.

    Args:
        arr: structured ``(N,)`` (unorganized: ``height = 1``) or ``(H, W)`` (organized)
            array. Field order, offsets and padding (``itemsize``) are kept as the
            PointField layout; non-native byte orders are converted.
        header: used as is (shared) unless ``frame_id`` is given.
        frame_id: overrides ``header.frame_id`` in a new header.
        is_dense: default: ``True`` iff x, y and z (or, without them, every float field)
            are finite everywhere.

    Raises:
        PointCloudLayoutError: not structured, wrong ndim, or a field PointField cannot
            express.
    """
    arr = np.asarray(arr)
    if arr.dtype.names is None:
        raise PointCloudLayoutError(
            f"array_to_pointcloud2 needs a structured array, got dtype {arr.dtype}; see "
            "make_xyz_rgb_cloud / create_cloud_xyz32 for plain (N, 3) arrays"
        )
    if arr.ndim not in (1, 2):
        raise PointCloudLayoutError(f"expected a (N,) or (H, W) array, got shape {arr.shape}")
    native = _native(arr.dtype)
    if native != arr.dtype:
        arr = arr.astype(native)
    fields = fields_from_dtype(arr.dtype)
    height, width = (1, arr.shape[0]) if arr.ndim == 1 else arr.shape
    msg = PointCloud2()
    msg.header = make_header(header, frame_id)
    msg.height = int(height)
    msg.width = int(width)
    msg.fields = fields
    msg.is_bigendian = HOST_IS_BIGENDIAN
    msg.point_step = int(arr.dtype.itemsize)
    msg.row_step = int(arr.dtype.itemsize * width)
    msg.is_dense = _default_is_dense(arr) if is_dense is None else bool(is_dense)
    msg.data = bytes_to_uint8_field(arr)
    return msg


def _as_cloud_array(cloud: np.ndarray | PointCloud2) -> np.ndarray:
    if isinstance(cloud, np.ndarray):
        return cloud
    return pointcloud2_to_array(cloud)


def xyz_array(cloud_array: np.ndarray | PointCloud2, skip_nans: bool = False) -> np.ndarray:
    """Point coordinates as a plain float32 array.

    Args:
        cloud_array: structured array with ``x``, ``y``, ``z`` fields (or a PointCloud2).
        skip_nans: drop points with a non-finite (NaN or inf) coordinate; the result is
            then always ``(M, 3)``.

    Returns:
        New ``(N, 3) float32`` array, or ``(H, W, 3)`` for an organized ``(H, W)`` input
        when ``skip_nans`` is false.
    """
    arr = _as_cloud_array(cloud_array)
    names = arr.dtype.names or ()
    missing = [n for n in _XYZ if n not in names]
    if missing:
        raise PointCloudLayoutError(
            f"cloud has no {'/'.join(missing)} field(s); fields: {list(names)}"
        )
    xyz = np.empty(arr.shape + (3,), dtype=np.float32)
    for axis, name in enumerate(_XYZ):
        xyz[..., axis] = arr[name]
    if skip_nans:
        xyz = xyz.reshape(-1, 3)
        xyz = xyz[np.isfinite(xyz).all(axis=1)]
    return xyz


def rgb_float_to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Unpack PCL colours: float32 (or uint32) values whose bits are ``0x00RRGGBB``.

    Args:
        rgb: ``(...)`` float32 or uint32/int32 array, e.g. ``cloud["rgb"]`` (may be a
            strided view).

    Returns:
        ``(..., 3) uint8`` R, G, B.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype.itemsize != 4 or rgb.dtype.kind not in "fui":
        raise ValueError(f"packed rgb must be float32 or (u)int32, got {rgb.dtype}")
    if not rgb.dtype.isnative:
        rgb = rgb.astype(rgb.dtype.newbyteorder("="))
    bits = rgb.view(np.uint32)
    out = np.empty(rgb.shape + (3,), dtype=np.uint8)
    out[..., 0] = bits >> 16
    out[..., 1] = bits >> 8
    out[..., 2] = bits
    return out


def rgb_uint8_to_float(rgb: np.ndarray) -> np.ndarray:
    """Pack ``(..., 3) uint8`` R, G, B into PCL float32 colours (bits ``0x00RRGGBB``).

    Returns:
        ``(...) float32``; e.g. ``(255, 0, 128)`` has the bits ``0x00FF0080``.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim < 1 or rgb.shape[-1] != 3:
        raise ValueError(f"expected a (..., 3) uint8 array, got {rgb.dtype} {rgb.shape}")
    packed = rgb[..., 0].astype(np.uint32) << 16
    packed |= rgb[..., 1].astype(np.uint32) << 8
    packed |= rgb[..., 2]
    return packed.view(np.float32)


def _xyz_plus_one(
    xyz: np.ndarray,
    extra: np.ndarray,
    extra_name: str,
    header: Header | None,
    frame_id: str | None,
    is_dense: bool | None,
) -> PointCloud2:
    xyz = np.asarray(xyz)
    if xyz.ndim not in (2, 3) or xyz.shape[-1] != 3:
        raise ValueError(f"xyz must be (N, 3) or (H, W, 3), got shape {xyz.shape}")
    lead = xyz.shape[:-1]
    if extra.shape != lead:
        raise ValueError(
            f"{extra_name} must have shape {lead} to match xyz {xyz.shape}, got {extra.shape}"
        )
    packed = np.empty(lead + (4,), dtype=np.float32)
    packed[..., :3] = xyz
    packed[..., 3] = extra
    point = np.dtype(
        {"names": [*_XYZ, extra_name], "formats": [np.float32] * 4, "offsets": [0, 4, 8, 12]}
    )
    return array_to_pointcloud2(packed.view(point)[..., 0], header, frame_id, is_dense)


def make_xyz_rgb_cloud(
    xyz: np.ndarray,
    rgb: np.ndarray,
    header: Header | None = None,
    frame_id: str | None = None,
    is_dense: bool | None = None,
) -> PointCloud2:
    """Cloud with float32 fields ``x, y, z, rgb`` (16-byte points, PCL ``PointXYZRGB`` packing).

    Args:
        xyz: ``(N, 3)`` or organized ``(H, W, 3)`` coordinates (cast to float32).
        rgb: ``(N, 3)`` / ``(H, W, 3)`` uint8 R, G, B.
    """
    rgb = np.asarray(rgb)
    if rgb.shape != np.shape(xyz):
        raise ValueError(f"rgb shape {rgb.shape} does not match xyz shape {np.shape(xyz)}")
    return _xyz_plus_one(xyz, rgb_uint8_to_float(rgb), "rgb", header, frame_id, is_dense)


def make_xyz_intensity_cloud(
    xyz: np.ndarray,
    intensity: np.ndarray,
    header: Header | None = None,
    frame_id: str | None = None,
    is_dense: bool | None = None,
) -> PointCloud2:
    """Cloud with float32 fields ``x, y, z, intensity`` (16-byte points).

    Args:
        xyz: ``(N, 3)`` or organized ``(H, W, 3)`` coordinates (cast to float32).
        intensity: ``(N,)`` / ``(H, W)`` values (cast to float32).
    """
    return _xyz_plus_one(xyz, np.asarray(intensity), "intensity", header, frame_id, is_dense)


# --- sensor_msgs_py.point_cloud2 names ---------------------------------------------------
# Same signatures and results as sensor_msgs_py.point_cloud2 (including its quirks: NaN
# skipping only when the cloud is not dense, ``uvs`` indexing the points left after it),
# except that failures raise PointCloudLayoutError instead of AssertionError, and that
# ``row_step`` padding and byte order are honoured without modifying the message.


def _split_fields(fields: Iterable[PointField]) -> list[PointField]:
    """sensor_msgs_py's view of the fields: ``count = n > 1`` split into ``name_0 ..``
    ``name_{n-1}``, unnamed field ``i`` called ``unnamed_field_i``."""
    split = []
    for index, field in enumerate(fields):
        name = field.name or f"{_UNNAMED_FIELD_PREFIX}_{index}"
        count = max(int(field.count), 1)
        item = DATATYPES[field.datatype].itemsize if field.datatype in DATATYPES else 0
        for k in range(count):
            split.append(
                PointField(
                    name=name if count == 1 else f"{name}_{k}",
                    offset=int(field.offset) + k * item,
                    datatype=field.datatype,
                    count=1,
                )
            )
    return split


def dtype_from_fields(fields: Iterable[PointField], point_step: int | None = None) -> np.dtype:
    """Structured dtype of one point, sensor_msgs_py style (little-endian data).

    A field with ``count = n > 1`` becomes ``n`` scalar fields ``name_0 .. name_{n-1}``; an
    unnamed field ``i`` is called ``unnamed_field_i``. ``point_step`` sets the itemsize
    (default: the end of the last field).
    """
    return point_dtype(_split_fields(fields), point_step)


def read_points(
    cloud: PointCloud2,
    field_names: Sequence[str] | None = None,
    skip_nans: bool = False,
    uvs: Iterable[int] | np.ndarray | None = None,
    reshape_organized_cloud: bool = False,
) -> np.ndarray:
    """Structured ``(N,)`` array of the points (fields named as :func:`dtype_from_fields`).

    Args:
        field_names: fields to keep (default all).
        skip_nans: unless ``cloud.is_dense``, drop points where a kept field is NaN.
        uvs: flat indices (``v * width + u``) of the points to return, applied after
            ``skip_nans``.
        reshape_organized_cloud: return ``(H, W)`` for an organized cloud; needs all
            points (no ``skip_nans``/``uvs`` selection).

    Returns:
        Read-only structured array in host byte order: a view of ``cloud.data`` unless
        byte swapping or a selection needed a copy.
    """
    height, width = int(cloud.height), int(cloud.width)
    points = _cloud_view(cloud, _split_fields(cloud.fields)).reshape(-1)
    if field_names is not None:
        names = list(field_names)
        missing = [n for n in names if n not in (points.dtype.names or ())]
        if missing:
            raise PointCloudLayoutError(
                f"cloud has no field(s) {missing}; fields: {list(points.dtype.names or ())}"
            )
        points = points[names]
    if skip_nans and not cloud.is_dense:
        keep = np.ones(points.shape, dtype=bool)
        for name in points.dtype.names or ():
            if points.dtype[name].kind == "f":
                keep &= ~np.isnan(points[name])
        points = points[keep]
    if uvs is not None:
        index = uvs if isinstance(uvs, np.ndarray) else np.fromiter(uvs, dtype=np.int64)
        points = points[index]
    if reshape_organized_cloud and height > 1:
        if points.shape[0] != height * width:
            raise PointCloudLayoutError(
                f"cannot reshape {points.shape[0]} selected points to the {height}x{width} cloud"
            )
        points = points.reshape(height, width)
    points.flags.writeable = False
    return points


def read_points_numpy(
    cloud: PointCloud2,
    field_names: Sequence[str] | None = None,
    skip_nans: bool = False,
    uvs: Iterable[int] | np.ndarray | None = None,
    reshape_organized_cloud: bool = False,
) -> np.ndarray:
    """Points as a new plain ``(N, k)`` array (``(H, W, k)`` with ``reshape_organized_cloud``),
    one column per field value. The selected fields must share one datatype, which is the
    result's dtype. Arguments as :func:`read_points`.
    """
    points = read_points(cloud, field_names, skip_nans, uvs, reshape_organized_cloud)
    types = {points.dtype[name] for name in points.dtype.names or ()}
    if len(types) > 1:
        raise PointCloudLayoutError(
            "read_points_numpy needs fields of one datatype, got "
            f"{sorted(str(t) for t in types)}; select fields with field_names or use read_points"
        )
    if not types:
        return np.empty(points.shape + (0,), dtype=np.float32)
    return recfunctions.structured_to_unstructured(points, dtype=types.pop(), copy=True)


def create_cloud(
    header: Header,
    fields: Sequence[PointField],
    points: np.ndarray | Iterable,
    point_step: int | None = None,
) -> PointCloud2:
    """Cloud with the given field layout (sensor_msgs_py signature).

    Args:
        fields: PointFields.
        points: a structured array with (at least) the field names
            :func:`dtype_from_fields` gives ``fields``, ``(N,)`` or organized ``(H, W)``;
            or a plain ``(N, k)`` array with one column per field value, in ``fields``
            order (mixed datatypes allowed). Lists of tuples are accepted for
            compatibility but are slow.
        point_step: default: the end of the last field.

    ``is_dense`` is False, as in sensor_msgs_py (always safe for consumers); bytes not
    covered by a field are zero.
    """
    fields = list(fields)
    dtype = _native(dtype_from_fields(fields, point_step))
    names = dtype.names or ()
    points = np.asarray(points)
    if points.dtype.names is None:
        if points.size == 0 and points.ndim < 2:
            points = points.reshape(0, len(names))
        if points.ndim != 2 or points.shape[1] != len(names):
            raise PointCloudLayoutError(
                f"plain points must be (N, {len(names)}) for fields {list(names)}, "
                f"got shape {points.shape}"
            )
        structured = np.zeros(points.shape[0], dtype=dtype)
        for column, name in enumerate(names):
            structured[name] = points[:, column]
    else:
        missing = [n for n in names if n not in points.dtype.names]
        if missing:
            raise PointCloudLayoutError(
                f"points have no field(s) {missing}; they have {list(points.dtype.names)}"
            )
        if points.ndim not in (1, 2):
            raise PointCloudLayoutError(
                f"expected (N,) or (H, W) points, got shape {points.shape}"
            )
        structured = np.zeros(points.shape, dtype=dtype)
        for name in names:
            structured[name] = points[name]
    height, width = (1, structured.shape[0]) if structured.ndim == 1 else structured.shape
    msg = PointCloud2()
    msg.header = header
    msg.height = int(height)
    msg.width = int(width)
    msg.fields = fields
    msg.is_bigendian = HOST_IS_BIGENDIAN
    msg.point_step = int(dtype.itemsize)
    msg.row_step = int(dtype.itemsize * width)
    msg.is_dense = False
    msg.data = bytes_to_uint8_field(structured)
    return msg


def create_cloud_xyz32(header: Header, points: np.ndarray | Iterable) -> PointCloud2:
    """Cloud of float32 ``x, y, z`` (12-byte points) from ``(N, 3)`` coordinates."""
    fields = [
        PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1)
        for i, name in enumerate(_XYZ)
    ]
    return create_cloud(header, fields, np.asarray(points, dtype=np.float32).reshape(-1, 3))
