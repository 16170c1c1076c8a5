"""``sensor_msgs/Image`` to and from numpy arrays and torch tensors.

Reading is zero-copy: :func:`image_to_numpy` returns a strided view of ``msg.data`` that
honours row padding (``step``). Only a byte order that differs from the host's forces a
copy. Writing copies the array's bytes into the message once.

Arrays are ``(H, W)`` for one-channel encodings and ``(H, W, C)`` otherwise, with the
channels in the order the encoding names them (``bgr8`` stays B, G, R).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from kestrel_ros.conversions._buffers import (
    HOST_IS_BIGENDIAN,
    bytes_to_uint8_field,
    make_header,
    uint8_view,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "ENCODINGS",
    "EncodingInfo",
    "ImageEncodingError",
    "ImageLayoutError",
    "encoding_info",
    "image_to_numpy",
    "image_to_tensor",
    "numpy_to_image",
    "tensor_to_image",
    "to_gray_float",
    "to_rgb8",
]


class ImageEncodingError(ValueError):
    """The image encoding is unknown to Kestrel, or does not fit the array."""


class ImageLayoutError(ValueError):
    """``step``, ``height`` and ``data`` of an Image disagree."""


class EncodingInfo(NamedTuple):
    """Element type and channel count of one ``sensor_msgs/image_encodings`` name."""

    dtype: np.dtype
    channels: int

    @property
    def bytes_per_pixel(self) -> int:
        return self.dtype.itemsize * self.channels


def _build_encoding_table() -> dict[str, EncodingInfo]:
    table: dict[str, EncodingInfo] = {}
    u8, u16 = np.dtype(np.uint8), np.dtype(np.uint16)
    named = {
        "mono8": (u8, 1),
        "mono16": (u16, 1),
        "rgb8": (u8, 3),
        "bgr8": (u8, 3),
        "rgba8": (u8, 4),
        "bgra8": (u8, 4),
        "rgb16": (u16, 3),
        "bgr16": (u16, 3),
        "rgba16": (u16, 4),
        "bgra16": (u16, 4),
        # Packed YUV 4:2:2 (UYVY and YUYV): two bytes per pixel.
        "yuv422": (u8, 2),
        "yuv422_yuy2": (u8, 2),
    }
    for pattern in ("rggb", "bggr", "gbrg", "grbg"):
        named[f"bayer_{pattern}8"] = (u8, 1)
        named[f"bayer_{pattern}16"] = (u16, 1)
    for name, (dtype, channels) in named.items():
        table[name] = EncodingInfo(dtype, channels)
    # OpenCV-style generic types, e.g. 32FC2 for optical flow.
    generic = {
        "8U": np.uint8,
        "8S": np.int8,
        "16U": np.uint16,
        "16S": np.int16,
        "32S": np.int32,
        "32F": np.float32,
        "64F": np.float64,
    }
    for prefix, dtype in generic.items():
        for channels in (1, 2, 3, 4):
            table[f"{prefix}C{channels}"] = EncodingInfo(np.dtype(dtype), channels)
    return table


#: encoding name -> (numpy dtype, channels), e.g. ``ENCODINGS["32FC2"] == (float32, 2)``.
ENCODINGS: dict[str, EncodingInfo] = _build_encoding_table()

# How to read the first three channels as R, G, B (for display and grey conversion).
# Generic 3/4-channel types are treated as BGR/BGRA, the OpenCV convention cv_bridge uses.
_RGB_ORDER = (0, 1, 2)
_BGR_ORDER = (2, 1, 0)
_COLOR_ORDER: dict[str, tuple[int, int, int]] = {
    "rgb8": _RGB_ORDER,
    "rgba8": _RGB_ORDER,
    "rgb16": _RGB_ORDER,
    "rgba16": _RGB_ORDER,
    "bgr8": _BGR_ORDER,
    "bgra8": _BGR_ORDER,
    "bgr16": _BGR_ORDER,
    "bgra16": _BGR_ORDER,
}
_NOT_DISPLAYABLE_PREFIXES = ("bayer_", "yuv422")


def encoding_info(encoding: str) -> EncodingInfo:
    """Look up ``(dtype, channels)`` for an encoding; :class:`ImageEncodingError` if unknown."""
    try:
        return ENCODINGS[encoding]
    except KeyError:
        raise ImageEncodingError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(ENCODINGS)}"
        ) from None


def _image_view(msg: Image) -> np.ndarray:
    """Native-byte-order array of the pixels of ``msg``; a view of ``msg.data`` if possible."""
    info = encoding_info(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * info.bytes_per_pixel
    if step < row_bytes:
        raise ImageLayoutError(
            f"{msg.encoding} image of width {width} needs step >= {row_bytes} bytes "
            f"({info.bytes_per_pixel} bytes per pixel), got step {step}"
        )
    data = uint8_view(msg.data)
    if data.size < step * height:
        raise ImageLayoutError(
            f"{width}x{height} {msg.encoding} image with step {step} needs "
            f"{step * height} data bytes, got {data.size}"
        )
    itemsize = info.dtype.itemsize
    swap = itemsize > 1 and bool(msg.is_bigendian) != HOST_IS_BIGENDIAN
    dtype = info.dtype.newbyteorder() if swap else info.dtype
    # Strided view straight onto the message buffer: rows are `step` bytes apart, which
    # skips any row padding. numpy copes with unaligned starts (odd step, 16-bit data).
    view = np.ndarray(
        shape=(height, width, info.channels),
        dtype=dtype,
        buffer=data,
        strides=(step, info.bytes_per_pixel, itemsize),
    )
    if swap:
        view = view.astype(info.dtype, order="C")  # the only copying path
    if info.channels == 1:
        view = view[:, :, 0]
    return view


def image_to_numpy(msg: Image) -> np.ndarray:
    """View the pixels of an Image as a numpy array.

    Args:
        msg: ``sensor_msgs/Image`` (or any object with the same fields) in one of
            :data:`ENCODINGS`.

    Returns:
        ``(H, W)`` for one-channel encodings, ``(H, W, C)`` otherwise, with the
        encoding's dtype in host byte order. The result is **read-only**. When the
        message's byte order matches the host (the normal case) it is a zero-copy view
        of ``msg.data``, also if rows are padded (``step > W * bytes_per_pixel``): it
        keeps that buffer alive and shows in-place changes to it (not a later
        reassignment of ``msg.data``). A big-endian message on a little-endian host (or
        vice versa) is byte-swapped into a copy. Call ``.copy()`` for a writable array.

    Raises:
        ImageEncodingError: unsupported encoding.
        ImageLayoutError: ``step < W * bytes_per_pixel`` or ``len(data) < step * H``.
    """
    view = _image_view(msg)
    view.flags.writeable = False
    return view


def _check_array_for_encoding(arr: np.ndarray, encoding: str) -> tuple[np.ndarray, EncodingInfo]:
    info = encoding_info(encoding)
    if arr.ndim == 3 and info.channels == 1 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    channels = 1 if arr.ndim == 2 else (arr.shape[2] if arr.ndim == 3 else None)
    if channels != info.channels:
        expected = "(H, W)" if info.channels == 1 else f"(H, W, {info.channels})"
        raise ImageEncodingError(
            f"encoding {encoding!r} needs an array of shape {expected}, got shape {arr.shape}"
        )
    if arr.dtype.kind != info.dtype.kind or arr.dtype.itemsize != info.dtype.itemsize:
        raise ImageEncodingError(
            f"encoding {encoding!r} needs dtype {info.dtype.name}, got {arr.dtype.name}; "
            "convert explicitly (e.g. arr.astype(...)) or pick the matching encoding"
        )
    if not arr.dtype.isnative:
        arr = arr.astype(info.dtype)
    return arr, info


def numpy_to_image(
    arr: np.ndarray,
    encoding: str,
    header: Header | None = None,
    frame_id: str | None = None,
) -> Image:
    """Build an Image from an array; the pixel bytes are copied once.

    Args:
        arr: ``(H, W)`` (or ``(H, W, 1)``) for one-channel encodings, ``(H, W, C)``
            otherwise; its dtype must be the encoding's (see :data:`ENCODINGS`), in any
            byte order. Non-contiguous arrays are accepted.
        encoding: e.g. ``"rgb8"``, ``"mono16"``, ``"32FC1"``, ``"32FC2"``.
        header: used as is (shared) unless ``frame_id`` is given.
        frame_id: overrides ``header.frame_id`` (the stamp is kept) in a new header.

    Returns:
        Image with unpadded rows (``step = W * bytes_per_pixel``) in host byte order.

    Raises:
        ImageEncodingError: unknown encoding, or the shape/dtype does not fit it.
    """
    arr, info = _check_array_for_encoding(np.asarray(arr), encoding)
    height, width = arr.shape[:2]
    msg = Image()
    msg.header = make_header(header, frame_id)
    msg.height = int(height)
    msg.width = int(width)
    msg.encoding = encoding
    msg.is_bigendian = int(HOST_IS_BIGENDIAN)
    msg.step = int(width * info.bytes_per_pixel)
    msg.data = bytes_to_uint8_field(arr)
    return msg


def image_to_tensor(msg: Image, device: str | torch.device = "cpu") -> torch.Tensor:
    """Copy the pixels of an Image into a torch tensor.

    Returns:
        ``(H, W)`` or ``(H, W, C)`` contiguous tensor of the encoding's dtype (``uint16``
        for 16-bit encodings, which torch supports only for a few ops: convert with
        ``.float()``/``.int()`` before arithmetic). The tensor owns its memory (never
        aliases ``msg.data``): one copy on the CPU, one host-to-device copy otherwise.
    """
    import torch

    view = _image_view(msg)
    if torch.device(device).type == "cpu":
        return torch.from_numpy(np.array(view, order="C", copy=True))
    if not view.flags.writeable:  # torch.from_numpy warns on read-only buffers
        view = np.array(view, order="C", copy=True)
    return torch.from_numpy(view).to(device).contiguous()


def tensor_to_image(
    tensor: torch.Tensor,
    encoding: str,
    header: Header | None = None,
    frame_id: str | None = None,
) -> Image:
    """Build an Image from a ``(H, W)`` or ``(H, W, C)`` tensor on any device.

    The tensor's dtype must be the encoding's (e.g. ``torch.float32`` for ``32FC1``);
    it is detached and copied to the CPU. See :func:`numpy_to_image`.
    """
    array_ = tensor.detach().to("cpu").contiguous().numpy()
    return numpy_to_image(array_, encoding, header=header, frame_id=frame_id)


_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 R, G, B


def _channel_order(encoding: str | None, channels: int) -> tuple[int, int, int]:
    if encoding is None:
        return _RGB_ORDER
    if encoding.startswith(_NOT_DISPLAYABLE_PREFIXES):
        raise ImageEncodingError(
            f"encoding {encoding!r} is a raw sensor layout; demosaic/convert it to rgb8 or "
            "bgr8 first (e.g. with OpenCV)"
        )
    info = encoding_info(encoding)
    if info.channels != channels:
        raise ImageEncodingError(
            f"encoding {encoding!r} has {info.channels} channels, array has {channels}"
        )
    return _COLOR_ORDER.get(encoding, _BGR_ORDER)


def _channels_of(arr: np.ndarray) -> int:
    if arr.ndim == 2:
        return 1
    if arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        return arr.shape[2]
    raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {arr.shape}")


def to_gray_float(arr: np.ndarray, encoding: str | None = None) -> np.ndarray:
    """Grey-level float image for algorithms that work on intensity.

    Args:
        arr: ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)``; any real dtype.
        encoding: channel order of ``arr`` (``"bgr8"``, ``"rgba16"``, ...). ``None``
            means R, G, B(, A). Generic ``8UC3``-style encodings are taken as BGR(A).

    Returns:
        ``(H, W) float32``. Integer inputs are scaled by their dtype's maximum to
        ``[0, 1]`` (``uint8`` 255 -> 1.0); float inputs keep their values. Colour uses
        the BT.601 luma weights ``0.299 R + 0.587 G + 0.114 B``; alpha is ignored.
    """
    arr = np.asarray(arr)
    channels = _channels_of(arr)
    if channels == 1:
        gray = arr.reshape(arr.shape[0], arr.shape[1]).astype(np.float32)
    else:
        order = _channel_order(encoding, channels)
        weights = np.zeros(channels, dtype=np.float32)
        weights[list(order)] = _LUMA_WEIGHTS
        gray = arr.astype(np.float32, copy=False) @ weights
    if np.issubdtype(arr.dtype, np.integer):
        gray *= np.float32(1.0 / np.iinfo(arr.dtype).max)
    return gray


def to_rgb8(
    arr: np.ndarray,
    encoding: str,
    min_value: float | None = None,
    max_value: float | None = None,
) -> np.ndarray:
    """Convert an image array to ``(H, W, 3) uint8`` R, G, B for display.

    Args:
        arr: ``(H, W)`` or ``(H, W, C)`` as returned by :func:`image_to_numpy`.
        encoding: the encoding ``arr`` came from. ``bgr*``/``bgra*`` and generic 3/4
            channel types (``8UC3``, OpenCV's BGR convention) are reordered, alpha is
            dropped, one-channel images are replicated to grey. Two-channel images
            (flow) and raw Bayer/YUV layouts raise :class:`ImageEncodingError`.
        min_value, max_value: value range mapped linearly to ``0..255`` (clipped) for
            non-``uint8`` data. Defaults: the full range of integer dtypes
            (``uint16`` 65535 -> 255), the finite min/max of float data. NaN -> 0.

    Returns:
        New ``(H, W, 3) uint8`` C-contiguous array.
    """
    arr = np.asarray(arr)
    info = encoding_info(encoding)
    if encoding.startswith(_NOT_DISPLAYABLE_PREFIXES) or info.channels == 2:
        raise ImageEncodingError(
            f"cannot display {encoding!r} as RGB: raw Bayer/YUV layouts need demosaicing and "
            "two-channel images (e.g. optical flow) need a colour coding"
        )
    channels = _channels_of(arr)
    if channels != info.channels:
        raise ImageEncodingError(
            f"encoding {encoding!r} has {info.channels} channels, array has {channels}"
        )
    if arr.dtype != np.uint8:
        arr = _scale_to_uint8(arr, min_value, max_value)
    order = (0, 0, 0) if channels == 1 else _channel_order(encoding, channels)
    planes = arr.reshape(arr.shape[0], arr.shape[1], -1)
    out = np.empty(arr.shape[:2] + (3,), dtype=np.uint8)
    for target, source in enumerate(order):  # three plane copies: ~7x faster than arr[..., ::-1]
        out[:, :, target] = planes[:, :, source]
    return out


def _scale_to_uint8(
    arr: np.ndarray, min_value: float | None, max_value: float | None
) -> np.ndarray:
    values = arr.astype(np.float32)
    if min_value is None or max_value is None:
        if np.issubdtype(arr.dtype, np.integer):
            limits = np.iinfo(arr.dtype)
            low, high = float(limits.min), float(limits.max)
        else:
            finite = values[np.isfinite(values)]
            low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        min_value = low if min_value is None else min_value
        max_value = high if max_value is None else max_value
    span = float(max_value) - float(min_value)
    scale = 255.0 / span if span > 0 else 0.0
    values -= np.float32(min_value)
    values *= np.float32(scale)
    np.nan_to_num(values, copy=False, nan=0.0, posinf=255.0, neginf=0.0)
    np.clip(values, 0.0, 255.0, out=values)
    return (values + 0.5).astype(np.uint8)
