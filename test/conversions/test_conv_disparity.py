"""stereo_msgs/DisparityImage: stereo_image_proc conventions, invalid pixels, valid window."""

from __future__ import annotations

import array
import sys

import numpy as np
import pytest
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import Header

from kestrel_ros.conversions.disparity import (
    DEFAULT_DELTA_D,
    disparity_image_to_numpy,
    make_disparity_image,
)
from kestrel_ros.conversions.image import ImageEncodingError, image_to_numpy

FX, BASELINE, DOFFS = 994.978, 0.193001, 31.086


def header() -> Header:
    h = Header(frame_id="left_optical")
    h.stamp.sec, h.stamp.nanosec = 100, 42
    return h


def disparity_map() -> np.ndarray:
    d = np.full((6, 8), np.nan, dtype=np.float32)
    d[1:5, 2:7] = np.linspace(10.0, 60.0, 20, dtype=np.float32).reshape(4, 5)
    return d


def test_message_fields(strict_field_checks: None) -> None:
    msg = make_disparity_image(disparity_map(), header(), FX, BASELINE, 0.0, 64.0)
    assert (msg.f, msg.t) == (pytest.approx(FX), pytest.approx(BASELINE))
    assert (msg.min_disparity, msg.max_disparity) == (0.0, 64.0)
    assert msg.delta_d == pytest.approx(DEFAULT_DELTA_D) == pytest.approx(1 / 16)
    assert msg.header.frame_id == msg.image.header.frame_id == "left_optical"
    assert (msg.header.stamp.sec, msg.image.header.stamp.nanosec) == (100, 42)
    assert msg.image.encoding == "32FC1"
    assert (msg.image.height, msg.image.width, msg.image.step) == (6, 8, 32)
    assert (
        make_disparity_image(disparity_map(), None, FX, BASELINE, 0.0, 64.0, delta_d=0.25).delta_d
        == 0.25
    )


def test_invalid_pixels_written_below_min_and_read_as_nan() -> None:
    d = disparity_map()
    d[2, 3] = np.inf
    d[3, 3] = 4.0  # finite but below min_disparity
    msg = make_disparity_image(d, header(), FX, BASELINE, min_disparity=5.0, max_disparity=69.0)
    stored = image_to_numpy(msg.image)
    invalid = (
        np.isnan(disparity_map())
        | (np.arange(48).reshape(6, 8) == 2 * 8 + 3)
        | (np.arange(48).reshape(6, 8) == 3 * 8 + 3)
    )
    assert np.all(np.isfinite(stored))  # never NaN on the wire
    np.testing.assert_array_equal(stored[invalid], 4.0)  # min_disparity - 1
    np.testing.assert_array_equal(stored[~invalid], d[~invalid])
    back = disparity_image_to_numpy(msg)
    assert back.dtype == np.float32 and back.flags.writeable
    np.testing.assert_array_equal(np.isnan(back), invalid)
    np.testing.assert_array_equal(back[~invalid], d[~invalid])  # valid values exact


def test_round_trip_with_negative_min_disparity() -> None:
    d = disparity_map() - 20.0  # values -10 .. 40
    back = disparity_image_to_numpy(make_disparity_image(d, header(), FX, BASELINE, -16.0, 48.0))
    np.testing.assert_array_equal(back, d)  # equal_nan


def test_depth_from_shifted_disparity() -> None:
    """With doffs != 0 the caller stores d_match + doffs, so Z = f * t / value."""
    depth = np.array([[1.0, 2.5], [4.0, 10.0]])
    d_match = FX * BASELINE / depth - DOFFS
    msg = make_disparity_image(
        (d_match + DOFFS).astype(np.float32), header(), FX, BASELINE, 0.0, 256.0
    )
    values = disparity_image_to_numpy(msg)
    np.testing.assert_allclose(msg.f * msg.t / values, depth, rtol=1e-6)


def test_valid_window_default_is_bounding_box_of_valid_pixels() -> None:
    roi = make_disparity_image(disparity_map(), header(), FX, BASELINE, 0.0, 64.0).valid_window
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height) == (2, 1, 5, 4)
    none_valid = np.full((3, 4), np.nan, np.float32)
    roi = make_disparity_image(none_valid, header(), FX, BASELINE, 0.0, 64.0).valid_window
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height) == (0, 0, 0, 0)


def test_valid_window_given() -> None:
    msg = make_disparity_image(
        disparity_map(), header(), FX, BASELINE, 0.0, 64.0, valid_window=(1, 2, 6, 3)
    )
    roi = msg.valid_window
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height) == (1, 2, 6, 3)
    given = RegionOfInterest(x_offset=0, y_offset=0, width=8, height=6)
    assert (
        make_disparity_image(
            disparity_map(), header(), FX, BASELINE, 0.0, 64.0, valid_window=given
        ).valid_window
        == given
    )
    with pytest.raises(ValueError, match="exceeds the 8x6"):
        make_disparity_image(
            disparity_map(), header(), FX, BASELINE, 0.0, 64.0, valid_window=(4, 0, 5, 6)
        )


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"disparity": np.zeros((2, 2, 1), np.float32)}, "float array"),
        ({"disparity": np.zeros((2, 2), np.int16)}, "float array"),
        ({"focal": 0.0}, "must be positive"),
        ({"baseline": -0.1}, "must be positive"),
        ({"min_disparity": 64.0}, "min_disparity < max_disparity"),
        ({"delta_d": 0.0}, "delta_d"),
    ],
)
def test_argument_errors(kwargs: dict, pattern: str) -> None:
    args = {
        "disparity": disparity_map(),
        "header": header(),
        "focal": FX,
        "baseline": BASELINE,
        "min_disparity": 0.0,
        "max_disparity": 64.0,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=pattern):
        make_disparity_image(**args)


def test_reader_checks_encoding_and_byte_order() -> None:
    msg = make_disparity_image(disparity_map(), header(), FX, BASELINE, 0.0, 64.0)
    stored = image_to_numpy(msg.image).copy()
    foreign = ">f4" if sys.byteorder == "little" else "<f4"
    msg.image.is_bigendian = int(sys.byteorder == "little")
    msg.image.data = array.array("B", stored.astype(foreign).tobytes())
    np.testing.assert_array_equal(disparity_image_to_numpy(msg), disparity_map())
    msg.image.encoding = "16UC1"
    with pytest.raises(ImageEncodingError, match="32FC1"):
        disparity_image_to_numpy(msg)
