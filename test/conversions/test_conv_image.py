"""sensor_msgs/Image <-> numpy/torch: every encoding, step padding, byte order, NaN, errors."""

from __future__ import annotations

import array
import sys

import numpy as np
import pytest
import torch
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from kestrel_ros.conversions.image import (
    ENCODINGS,
    ImageEncodingError,
    ImageLayoutError,
    image_to_numpy,
    image_to_tensor,
    numpy_to_image,
    tensor_to_image,
    to_gray_float,
    to_rgb8,
)

HOST_BIG = sys.byteorder == "big"
ALL_ENCODINGS = sorted(ENCODINGS)


def random_image(encoding: str, height: int = 5, width: int = 7, seed: int = 0) -> np.ndarray:
    """Random pixels for ``encoding``: (H, W) or (H, W, C); floats include NaN and inf."""
    dtype, channels = ENCODINGS[encoding]
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels == 1 else (height, width, channels)
    if dtype.kind == "f":
        arr = rng.normal(0.0, 100.0, size=shape).astype(dtype)
        arr.reshape(-1)[::5] = np.nan
        arr.reshape(-1)[1] = np.inf
        arr.reshape(-1)[2] = -np.inf
        return arr
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def hand_built_image(
    arr: np.ndarray, encoding: str, padding: int = 0, bigendian: bool = HOST_BIG
) -> Image:
    """An Image assembled byte by byte: rows padded with ``padding`` garbage bytes, data in
    the requested byte order. Independent of numpy_to_image."""
    dtype, channels = ENCODINGS[encoding]
    height, width = arr.shape[:2]
    ordered = arr.astype(dtype.newbyteorder(">" if bigendian else "<"))
    row_bytes = width * channels * dtype.itemsize
    step = row_bytes + padding
    raw = np.full((height, step), 0xA5, dtype=np.uint8)  # garbage in the padding
    raw[:, :row_bytes] = np.ascontiguousarray(ordered).view(np.uint8).reshape(height, row_bytes)
    msg = Image(
        height=height, width=width, encoding=encoding, step=step, is_bigendian=int(bigendian)
    )
    msg.data = array.array("B", raw.tobytes())
    return msg


def assert_same_pixels(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype.newbyteorder("=")
    np.testing.assert_array_equal(actual, expected)  # NaN == NaN here


def shares_message_buffer(arr: np.ndarray, msg: Image) -> bool:
    return np.shares_memory(arr, np.frombuffer(msg.data, dtype=np.uint8))


# --- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ALL_ENCODINGS)
def test_round_trip_every_encoding(encoding: str) -> None:
    arr = random_image(encoding)
    dtype, channels = ENCODINGS[encoding]
    msg = numpy_to_image(arr, encoding)
    assert (msg.height, msg.width, msg.encoding) == (5, 7, encoding)
    assert msg.step == 7 * channels * dtype.itemsize
    assert len(msg.data) == msg.step * msg.height
    assert msg.is_bigendian == int(HOST_BIG)
    assert isinstance(msg.data, array.array)
    out = image_to_numpy(msg)
    assert_same_pixels(out, arr)
    assert shares_message_buffer(out, msg)


@pytest.mark.parametrize("encoding", ALL_ENCODINGS)
@pytest.mark.parametrize("padding", [1, 3, 16])
def test_padded_rows_every_encoding(encoding: str, padding: int) -> None:
    arr = random_image(encoding, height=4, width=6, seed=1)
    msg = hand_built_image(arr, encoding, padding=padding)
    out = image_to_numpy(msg)
    assert_same_pixels(out, arr)
    # Odd paddings give unaligned rows; still a view of the message buffer.
    assert shares_message_buffer(out, msg)
    # Writing back removes the padding.
    repacked = numpy_to_image(out, encoding)
    assert repacked.step == msg.step - padding
    assert_same_pixels(image_to_numpy(repacked), arr)


@pytest.mark.parametrize(
    "encoding", ["mono16", "16UC3", "16SC1", "32SC2", "32FC1", "32FC2", "32FC4", "64FC1"]
)
@pytest.mark.parametrize("padding", [0, 5])
def test_foreign_byte_order_is_swapped(encoding: str, padding: int) -> None:
    arr = random_image(encoding, seed=2)
    msg = hand_built_image(arr, encoding, padding=padding, bigendian=not HOST_BIG)
    out = image_to_numpy(msg)
    assert_same_pixels(out, arr)
    assert out.dtype.isnative
    assert not shares_message_buffer(out, msg)  # swapping needs a copy
    assert not out.flags.writeable  # read-only either way


def test_big_endian_mono16_known_bytes() -> None:
    msg = Image(height=1, width=2, encoding="mono16", step=4, is_bigendian=1)
    msg.data = array.array("B", bytes([0x01, 0x02, 0xFF, 0x00]))
    np.testing.assert_array_equal(image_to_numpy(msg), [[0x0102, 0xFF00]])
    msg.is_bigendian = 0
    np.testing.assert_array_equal(image_to_numpy(msg), [[0x0201, 0x00FF]])


def test_big_endian_32fc1_known_bytes() -> None:
    msg = Image(height=1, width=2, encoding="32FC1", step=8, is_bigendian=1)
    msg.data = array.array("B", np.array([1.5, np.nan], dtype=">f4").tobytes())
    out = image_to_numpy(msg)
    assert out[0, 0] == np.float32(1.5)
    assert np.isnan(out[0, 1])


def test_byte_order_flag_ignored_for_8_bit() -> None:
    arr = random_image("rgb8")
    msg = hand_built_image(arr, "rgb8", bigendian=not HOST_BIG)
    out = image_to_numpy(msg)
    assert_same_pixels(out, arr)
    assert shares_message_buffer(out, msg)


def test_nan_and_inf_preserved_in_float_images() -> None:
    arr = np.array([[np.nan, 1.0, np.inf], [-np.inf, -0.0, 3.25]], dtype=np.float32)
    out = image_to_numpy(numpy_to_image(arr, "32FC1"))
    np.testing.assert_array_equal(np.isnan(out), np.isnan(arr))
    np.testing.assert_array_equal(out[~np.isnan(arr)], arr[~np.isnan(arr)])
    assert np.signbit(out[1, 1])


def test_optical_flow_32fc2_layout() -> None:
    flow = np.zeros((2, 3, 2), dtype=np.float32)
    flow[..., 0] = 1.5  # u
    flow[..., 1] = -2.0  # v
    msg = numpy_to_image(flow, "32FC2")
    assert msg.step == 3 * 8
    interleaved = np.frombuffer(msg.data, dtype=np.float32)
    np.testing.assert_array_equal(interleaved[:4], [1.5, -2.0, 1.5, -2.0])
    np.testing.assert_array_equal(image_to_numpy(msg), flow)


def test_empty_image_round_trip() -> None:
    for shape, encoding in [((0, 0), "mono8"), ((0, 4, 3), "rgb8"), ((3, 0), "32FC1")]:
        arr = np.zeros(shape, dtype=ENCODINGS[encoding].dtype)
        out = image_to_numpy(numpy_to_image(arr, encoding))
        assert out.shape == shape


def test_default_image_message_reads_as_empty_only_with_encoding() -> None:
    with pytest.raises(ImageEncodingError):
        image_to_numpy(Image())  # encoding ''
    assert image_to_numpy(Image(encoding="mono8")).shape == (0, 0)


# --- zero copy and read-only ---------------------------------------------------------------------


def test_view_is_zero_copy_and_read_only() -> None:
    arr = random_image("bgr8")
    msg = numpy_to_image(arr, "bgr8")
    out = image_to_numpy(msg)
    assert shares_message_buffer(out, msg)
    assert not out.flags.writeable
    with pytest.raises(ValueError):
        out[0, 0, 0] = 1
    msg.data[0] = (int(arr[0, 0, 0]) + 1) % 256  # the view follows the message buffer
    assert out[0, 0, 0] == (int(arr[0, 0, 0]) + 1) % 256
    copy = out.copy()
    copy[0, 0, 0] = 3  # copies are writable


def test_reads_bytes_and_numpy_data_fields() -> None:
    """Duck-typed messages (e.g. deserialized by rosbags) carry bytes or numpy data."""
    arr = random_image("16UC1")
    msg = numpy_to_image(arr, "16UC1")

    class Duck:
        height, width, encoding, step, is_bigendian = (
            msg.height,
            msg.width,
            msg.encoding,
            msg.step,
            msg.is_bigendian,
        )

    for data in (bytes(msg.data), np.frombuffer(msg.data, np.uint8).copy()):
        duck = Duck()
        duck.data = data
        assert_same_pixels(image_to_numpy(duck), arr)


def test_writer_accepts_non_contiguous_and_foreign_order_arrays() -> None:
    big = random_image("rgb8", height=10, width=12)
    view = big[::2, 1::3]
    assert not view.flags.c_contiguous
    assert_same_pixels(image_to_numpy(numpy_to_image(view, "rgb8")), view)
    swapped = random_image("mono16").astype(">u2")
    msg = numpy_to_image(swapped, "mono16")
    assert msg.is_bigendian == int(HOST_BIG)
    np.testing.assert_array_equal(image_to_numpy(msg), swapped)
    single = random_image("mono8")[:, :, None]
    assert image_to_numpy(numpy_to_image(single, "mono8")).shape == single.shape[:2]


def test_writer_passes_strict_field_checks(strict_field_checks: None) -> None:
    assert Image()._check_fields
    arr = random_image("32FC3")
    msg = numpy_to_image(arr, "32FC3", header=Header(frame_id="cam"))
    assert msg._check_fields
    assert_same_pixels(image_to_numpy(msg), arr)


# --- headers -------------------------------------------------------------------------------------


def test_header_and_frame_id() -> None:
    header = Header(frame_id="left_optical")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    arr = random_image("mono8")
    msg = numpy_to_image(arr, "mono8", header=header)
    assert msg.header.frame_id == "left_optical"
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 345)
    renamed = numpy_to_image(arr, "mono8", header=header, frame_id="other")
    assert renamed.header.frame_id == "other"
    assert (renamed.header.stamp.sec, renamed.header.stamp.nanosec) == (12, 345)
    assert header.frame_id == "left_optical"  # input header untouched
    assert numpy_to_image(arr, "mono8", frame_id="x").header.frame_id == "x"
    assert numpy_to_image(arr, "mono8").header.frame_id == ""


# --- errors --------------------------------------------------------------------------------------


def test_unsupported_encoding_error_names_it_and_lists_supported() -> None:
    msg = hand_built_image(random_image("mono8"), "mono8")
    msg.encoding = "jpeg"
    with pytest.raises(ImageEncodingError) as err:
        image_to_numpy(msg)
    assert isinstance(err.value, ValueError)
    assert "'jpeg'" in str(err.value)
    assert "rgb8" in str(err.value) and "32FC2" in str(err.value)
    with pytest.raises(ImageEncodingError, match="'nv12'"):
        numpy_to_image(random_image("mono8"), "nv12")


def test_short_data_error_says_expected_and_actual() -> None:
    msg = hand_built_image(random_image("rgb8", height=4, width=5), "rgb8", padding=2)  # step 17
    msg.data = msg.data[:-1]
    with pytest.raises(ImageLayoutError, match=r"needs 68 data bytes, got 67") as err:
        image_to_numpy(msg)
    assert isinstance(err.value, ValueError)


def test_step_smaller_than_row_error() -> None:
    msg = hand_built_image(random_image("32FC1", height=2, width=3), "32FC1")
    msg.step = 11
    with pytest.raises(ImageLayoutError, match=r"step >= 12 bytes.*got step 11"):
        image_to_numpy(msg)


@pytest.mark.parametrize(
    ("arr", "encoding", "pattern"),
    [
        (np.zeros((2, 2, 3), np.float32), "rgb8", "needs dtype uint8, got float32"),
        (np.zeros((2, 2), np.float64), "32FC1", "needs dtype float32, got float64"),
        (np.zeros((2, 2), np.uint8), "rgb8", r"shape \(H, W, 3\)"),
        (np.zeros((2, 2, 3), np.uint8), "mono8", r"shape \(H, W\)"),
        (np.zeros((2, 2, 2), np.float32), "32FC3", r"shape \(H, W, 3\)"),
        (np.zeros(4, np.uint8), "mono8", r"shape \(H, W\)"),
    ],
)
def test_writer_rejects_mismatched_arrays(arr: np.ndarray, encoding: str, pattern: str) -> None:
    with pytest.raises(ImageEncodingError, match=pattern):
        numpy_to_image(arr, encoding)


# --- torch ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoding", ["mono8", "rgb8", "bgra8", "mono16", "16SC1", "32FC1", "32FC2", "64FC1", "8SC3"]
)
def test_tensor_round_trip(encoding: str) -> None:
    arr = random_image(encoding, seed=3)
    msg = hand_built_image(arr, encoding, padding=3)
    tensor = image_to_tensor(msg)
    assert tuple(tensor.shape) == arr.shape
    assert tensor.is_contiguous()
    np.testing.assert_array_equal(tensor.numpy(), arr)
    back = tensor_to_image(tensor, encoding)
    assert_same_pixels(image_to_numpy(back), arr)


def test_tensor_owns_its_memory() -> None:
    arr = random_image("mono8")
    msg = numpy_to_image(arr, "mono8")
    tensor = image_to_tensor(msg)
    tensor[0, 0] = (int(arr[0, 0]) + 1) % 256
    assert msg.data[0] == arr[0, 0]


def test_tensor_from_big_endian_message() -> None:
    arr = random_image("32FC1", seed=4)
    tensor = image_to_tensor(hand_built_image(arr, "32FC1", bigendian=not HOST_BIG))
    np.testing.assert_array_equal(tensor.numpy(), arr)


def test_tensor_to_image_detaches_and_checks_dtype() -> None:
    tensor = torch.rand(3, 4, requires_grad=True)
    np.testing.assert_array_equal(
        image_to_numpy(tensor_to_image(tensor, "32FC1")), tensor.detach().numpy()
    )
    with pytest.raises(ImageEncodingError):
        tensor_to_image(tensor.double(), "32FC1")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_tensor_on_cuda() -> None:  # pragma: no cover - no GPU in CI
    arr = random_image("rgb8")
    tensor = image_to_tensor(numpy_to_image(arr, "rgb8"), device="cuda")
    assert tensor.device.type == "cuda"
    assert_same_pixels(image_to_numpy(tensor_to_image(tensor, "rgb8")), arr)


# --- display helpers -----------------------------------------------------------------------------


def test_to_gray_float_weights_and_channel_order() -> None:
    red_rgb = np.zeros((1, 2, 3), np.uint8)
    red_rgb[..., 0] = 255
    np.testing.assert_allclose(to_gray_float(red_rgb, "rgb8"), [[0.299, 0.299]], rtol=1e-6)
    np.testing.assert_allclose(to_gray_float(red_rgb), [[0.299, 0.299]], rtol=1e-6)  # default RGB
    red_bgr = red_rgb[..., ::-1]
    np.testing.assert_allclose(to_gray_float(red_bgr, "bgr8"), [[0.299, 0.299]], rtol=1e-6)
    red_bgra = np.concatenate([red_bgr, np.full((1, 2, 1), 7, np.uint8)], axis=2)
    np.testing.assert_allclose(to_gray_float(red_bgra, "bgra8"), [[0.299, 0.299]], rtol=1e-6)
    white16 = np.full((2, 2, 3), 65535, np.uint16)
    np.testing.assert_allclose(to_gray_float(white16, "rgb16"), np.ones((2, 2)), rtol=1e-6)
    mono = np.array([[0, 255]], np.uint8)
    gray = to_gray_float(mono)
    assert gray.dtype == np.float32 and gray.shape == (1, 2)
    np.testing.assert_allclose(gray, [[0.0, 1.0]])
    floats = np.array([[-2.5, 300.0]], np.float32)
    np.testing.assert_array_equal(to_gray_float(floats), floats)


def test_to_rgb8_reorders_and_scales() -> None:
    bgr = random_image("bgr8")
    np.testing.assert_array_equal(to_rgb8(bgr, "bgr8"), bgr[..., ::-1])
    np.testing.assert_array_equal(to_rgb8(bgr, "8UC3"), bgr[..., ::-1])  # OpenCV order
    rgb = random_image("rgb8")
    np.testing.assert_array_equal(to_rgb8(rgb, "rgb8"), rgb)
    rgba = random_image("rgba8")
    np.testing.assert_array_equal(to_rgb8(rgba, "rgba8"), rgba[..., :3])
    bgra = random_image("bgra8")
    np.testing.assert_array_equal(to_rgb8(bgra, "bgra8"), bgra[..., 2::-1])
    mono = random_image("mono8")
    out = to_rgb8(mono, "mono8")
    assert out.shape == mono.shape + (3,) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, np.repeat(mono[..., None], 3, axis=2))
    mono16 = np.array([[0, 65535, 32896]], np.uint16)
    np.testing.assert_array_equal(to_rgb8(mono16, "mono16")[..., 0], [[0, 255, 128]])
    depth = np.array([[1.0, 3.0, np.nan, 2.0]], np.float32)
    np.testing.assert_array_equal(to_rgb8(depth, "32FC1")[..., 1], [[0, 255, 0, 128]])
    np.testing.assert_array_equal(to_rgb8(depth, "32FC1", 0.0, 4.0)[..., 2], [[64, 191, 0, 128]])


@pytest.mark.parametrize(
    ("shape", "encoding"), [((2, 2, 2), "32FC2"), ((2, 2), "bayer_rggb8"), ((2, 2, 2), "yuv422")]
)
def test_to_rgb8_refuses_non_displayable(shape: tuple[int, ...], encoding: str) -> None:
    with pytest.raises(ImageEncodingError):
        to_rgb8(np.zeros(shape, ENCODINGS[encoding].dtype), encoding)


def test_to_rgb8_channel_mismatch() -> None:
    with pytest.raises(ImageEncodingError, match="3 channels"):
        to_rgb8(np.zeros((2, 2), np.uint8), "rgb8")
