"""sensor_msgs/CameraInfo <-> PinholeCamera / StereoRig, and the caches."""

from __future__ import annotations

import array

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from kestrel_core.geometry.camera import PinholeCamera
from kestrel_ros.conversions.camera_info import (
    CameraInfoError,
    CameraModelCache,
    StereoRigCache,
    camera_info_to_model,
    model_to_camera_info,
    stereo_rig_from_camera_infos,
)

# A Middlebury-style rectified pair: principal points differ by doffs.
FX = 994.978
BASELINE = 0.193001
DOFFS = 31.086
CX_LEFT, CY = 311.193, 254.877
WIDTH, HEIGHT = 741, 497


def camera_info(
    cx: float = CX_LEFT,
    tx: float = 0.0,
    frame_id: str = "left_optical",
    fx: float = FX,
    width: int = WIDTH,
    height: int = HEIGHT,
    model: str = "plumb_bob",
    d: tuple[float, ...] = (0.01, -0.02, 0.001, 0.0005, 0.003),
) -> CameraInfo:
    """A rectified CameraInfo assembled field by field (``tx = -fx * baseline`` for a right
    camera)."""
    msg = CameraInfo(width=width, height=height, distortion_model=model)
    msg.header.frame_id = frame_id
    msg.k = np.array([fx, 0.0, cx, 0.0, fx, CY, 0.0, 0.0, 1.0])
    msg.d = array.array("d", d)
    msg.r = np.array([1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0])
    msg.p = np.array([fx, 0.0, cx, tx, 0.0, fx, CY, 0.0, 0.0, 0.0, 1.0, 0.0])
    return msg


def left_right() -> tuple[CameraInfo, CameraInfo]:
    left = camera_info()
    right = camera_info(cx=CX_LEFT + DOFFS, tx=-FX * BASELINE, frame_id="left_optical")
    return left, right


def test_model_fields() -> None:
    msg = camera_info()
    model = camera_info_to_model(msg)
    assert isinstance(model, PinholeCamera)
    assert (model.width, model.height) == (WIDTH, HEIGHT)
    assert model.frame_id == "left_optical"
    assert model.distortion_model == "plumb_bob"
    assert model.K.shape == (3, 3) and model.R.shape == (3, 3) and model.P.shape == (3, 4)
    np.testing.assert_array_equal(model.K.reshape(-1), msg.k)
    np.testing.assert_array_equal(model.P.reshape(-1), msg.p)
    np.testing.assert_array_equal(model.R, np.eye(3))
    np.testing.assert_array_equal(model.D, [0.01, -0.02, 0.001, 0.0005, 0.003])
    assert (model.fx, model.fy, model.cx, model.cy) == (FX, FX, CX_LEFT, CY)


def test_round_trip_through_camera_info(strict_field_checks: None) -> None:
    model = camera_info_to_model(
        camera_info(model="rational_polynomial", d=tuple(np.arange(8) * 0.01))
    )
    header = Header(frame_id="")
    header.stamp.sec = 5
    msg = model_to_camera_info(model, header)
    assert msg.header.stamp.sec == 5
    assert msg.header.frame_id == "left_optical"  # empty header frame -> model frame
    assert msg.distortion_model == "rational_polynomial"
    assert camera_info_to_model(msg) == model
    assert model_to_camera_info(model, frame_id="other").header.frame_id == "other"
    assert model_to_camera_info(model, Header(frame_id="hdr")).header.frame_id == "hdr"


def test_empty_distortion_and_zero_rotation_are_accepted() -> None:
    msg = camera_info(d=())
    msg.r = np.zeros(9)
    model = camera_info_to_model(msg)
    assert model.D.shape == (0,)
    np.testing.assert_array_equal(model.R, np.eye(3))


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("k", np.zeros(9), "all-zero K"),
        ("p", np.zeros(12), "all-zero P"),
        ("k", np.array([np.nan, 0, 300, 0, 900, 250, 0, 0, 1.0]), "K .* NaN"),
        ("p", np.array([900, 0, 300, 0, 0, 900, 250, 0, 0, 0, 1, np.inf]), "P .* NaN or inf"),
        ("d", array.array("d", [0.1, np.nan, 0, 0, 0]), "D .* NaN"),
        ("distortion_model", "fisheye_unknown", "unsupported distortion model"),
        ("width", 0, "size must be positive"),
    ],
)
def test_invalid_camera_info(field: str, value: object, pattern: str) -> None:
    msg = camera_info()
    setattr(msg, field, value)
    with pytest.raises(CameraInfoError, match=pattern) as err:
        camera_info_to_model(msg)
    assert isinstance(err.value, ValueError)


def test_default_camera_info_is_uncalibrated() -> None:
    with pytest.raises(CameraInfoError, match="not calibrated"):
        camera_info_to_model(CameraInfo())


def test_cache_rebuilds_only_on_change() -> None:
    cache = CameraModelCache()
    assert cache.model is None
    msg = camera_info()
    first = cache.get(msg)
    assert cache.get(msg) is first
    assert cache.rebuilds == 1
    assert cache.get(camera_info()) is first  # new message, same content
    assert cache.rebuilds == 1
    changed = camera_info()
    changed.k = np.array([FX + 1.0, 0.0, CX_LEFT, 0.0, FX, CY, 0.0, 0.0, 1.0])
    second = cache.get(changed)
    assert cache.rebuilds == 2
    assert second.K[0, 0] == FX + 1.0
    assert cache.get(camera_info(frame_id="other")).frame_id == "other"
    assert cache.rebuilds == 3
    assert cache.get(camera_info(d=(0.0,) * 5)).D.tolist() == [0.0] * 5
    assert cache.rebuilds == 4


def test_cache_keeps_last_good_model_on_invalid_message() -> None:
    cache = CameraModelCache()
    good = cache.get(camera_info())
    bad = camera_info()
    bad.k = np.zeros(9)
    with pytest.raises(CameraInfoError):
        cache.get(bad)
    assert cache.model is good
    assert cache.rebuilds == 1
    assert cache.get(camera_info()) is good


def test_stereo_rig_middlebury_numbers() -> None:
    rig = stereo_rig_from_camera_infos(*left_right())
    assert rig.focal == pytest.approx(FX)
    assert rig.baseline == pytest.approx(BASELINE, rel=1e-12)
    assert rig.doffs == pytest.approx(DOFFS, rel=1e-12)


def test_stereo_rig_errors_are_clear() -> None:
    left, right = left_right()
    right.p = np.array([FX, 0.0, CX_LEFT, 0.0, 0.0, FX, CY, 0.0, 0.0, 0.0, 1.0, 0.0])
    with pytest.raises(
        CameraInfoError, match="invalid stereo pair.*baseline must be positive"
    ) as err:
        stereo_rig_from_camera_infos(left, right)
    assert isinstance(err.value, ValueError)
    with pytest.raises(CameraInfoError, match="baseline"):
        stereo_rig_from_camera_infos(right, left)  # swapped cameras: negative baseline
    small = camera_info(cx=CX_LEFT + DOFFS, tx=-FX * BASELINE, width=WIDTH // 2)
    with pytest.raises(CameraInfoError, match="left camera is"):
        stereo_rig_from_camera_infos(left, small)


def test_stereo_rig_cache() -> None:
    cache = StereoRigCache()
    left, right = left_right()
    rig = cache.get(left, right)
    assert cache.get(*left_right()) is rig
    assert cache.rebuilds == 1
    _, moved = left_right()
    moved.p = np.array([FX, 0.0, CX_LEFT + DOFFS, -FX * 0.5, 0.0, FX, CY, 0.0, 0.0, 0.0, 1.0, 0.0])
    assert cache.get(left, moved).baseline == pytest.approx(0.5)
    assert cache.rebuilds == 2
    zero = camera_info()
    with pytest.raises(CameraInfoError, match="baseline"):
        cache.get(left, zero)
    assert cache.rig is not None and cache.rig.baseline == pytest.approx(0.5)
