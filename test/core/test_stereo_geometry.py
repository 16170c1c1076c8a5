"""Rectified stereo geometry: closed forms, NaN handling, numpy and torch alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kestrel_core.geometry.camera import PinholeCamera, StereoRig
from kestrel_core.geometry.stereo import depth_to_disparity, disparity_to_depth, disparity_to_points

FOCAL, BASELINE, DOFFS = 994.978, 0.193001, 31.086  # Middlebury Motorcycle, quarter size


def make_rig(width: int = 6, height: int = 4, doffs: float = DOFFS) -> StereoRig:
    cx, cy = 2.5, 1.25
    k = [[FOCAL, 0, cx], [0, FOCAL * 1.01, cy], [0, 0, 1]]
    left = PinholeCamera(width, height, K=k, P=[[FOCAL, 0, cx, 0], [0, FOCAL * 1.01, cy, 0], [0, 0, 1, 0]])
    right = PinholeCamera(
        width, height, K=k,
        P=[[FOCAL, 0, cx + doffs, -FOCAL * BASELINE], [0, FOCAL * 1.01, cy, 0], [0, 0, 1, 0]],
    )
    return StereoRig(left, right)


def as_kind(values: np.ndarray, kind: str):
    return torch.from_numpy(values) if kind == "torch" else values


def to_numpy(values) -> np.ndarray:
    return values.cpu().numpy() if isinstance(values, torch.Tensor) else values


KINDS = ["numpy", "torch"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_disparity_to_depth_closed_form(kind, dtype):
    disparity = np.array([[10, 20], [40, 100]], dtype=dtype)
    depth = disparity_to_depth(as_kind(disparity, kind), FOCAL, BASELINE, DOFFS)
    assert type(depth) is type(as_kind(disparity, kind))
    expected = FOCAL * BASELINE / (disparity.astype(np.float64) + DOFFS)
    np.testing.assert_allclose(to_numpy(depth), expected, rtol=1e-6)
    assert to_numpy(depth).dtype == (np.float64 if dtype == np.float64 else np.float32)
    # without doffs: Z = f B / d; doubling the disparity halves the depth
    plain = to_numpy(disparity_to_depth(as_kind(disparity, kind), FOCAL, BASELINE))
    np.testing.assert_allclose(plain[0, 0] / plain[0, 1], 2.0, rtol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_invalid_disparities_give_nan(kind):
    disparity = np.array([np.nan, -DOFFS, -DOFFS - 1.0, -DOFFS + 1e-3, 0.0], dtype=np.float32)
    depth = to_numpy(disparity_to_depth(as_kind(disparity, kind), FOCAL, BASELINE, DOFFS))
    assert np.isnan(depth[:3]).all()
    assert np.isfinite(depth[3:]).all() and (depth[3:] > 0).all()


@pytest.mark.parametrize("kind", KINDS)
def test_depth_round_trip(kind):
    disparity = np.linspace(0.5, 200.0, 50, dtype=np.float64)
    depth = disparity_to_depth(as_kind(disparity, kind), FOCAL, BASELINE, DOFFS)
    back = to_numpy(depth_to_disparity(depth, FOCAL, BASELINE, DOFFS))
    np.testing.assert_allclose(back, disparity, rtol=1e-9)
    bad = to_numpy(depth_to_disparity(as_kind(np.array([np.nan, 0.0, -1.0]), kind), FOCAL, BASELINE, DOFFS))
    assert np.isnan(bad).all()


@pytest.mark.parametrize("kind", KINDS)
def test_disparity_to_points_closed_form(kind):
    rig = make_rig()
    disparity = np.full((4, 6), 20.0, dtype=np.float32)
    disparity[1, 2] = np.nan
    disparity[3, 5] = -40.0  # d + doffs < 0: behind the camera, invalid
    points = disparity_to_points(as_kind(disparity, kind), rig)
    assert type(points) is type(as_kind(disparity, kind))
    xyz = to_numpy(points)
    assert xyz.shape == (4, 6, 3) and xyz.dtype == np.float32
    z = FOCAL * BASELINE / (20.0 + DOFFS)
    v, u = 3, 4
    expected = [(u - 2.5) * z / FOCAL, (v - 1.25) * z / (FOCAL * 1.01), z]
    np.testing.assert_allclose(xyz[v, u], expected, rtol=1e-5)
    # x right, y down: a pixel left of and above the principal point has x < 0 and y < 0
    assert xyz[0, 0, 0] < 0 and xyz[0, 0, 1] < 0
    assert np.isnan(xyz[1, 2]).all() and np.isnan(xyz[3, 5]).all()
    assert np.isfinite(np.delete(xyz.reshape(-1, 3), [1 * 6 + 2, 3 * 6 + 5], axis=0)).all()


def test_numpy_and_torch_agree():
    rig = make_rig(width=30, height=20)
    rng = np.random.default_rng(0)
    disparity = rng.uniform(-40, 120, size=(20, 30)).astype(np.float32)
    disparity[rng.random((20, 30)) < 0.1] = np.nan
    a = disparity_to_points(disparity, rig)
    b = disparity_to_points(torch.from_numpy(disparity), rig).numpy()
    np.testing.assert_allclose(a, b, rtol=1e-6, equal_nan=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_points_stay_on_the_device():
    rig = make_rig()
    points = disparity_to_points(torch.full((4, 6), 10.0, device="cuda"), rig)
    assert points.device.type == "cuda"


def test_errors():
    rig = make_rig()
    with pytest.raises(ValueError, match="6x4"):
        disparity_to_points(np.zeros((5, 6), np.float32), rig)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        disparity_to_points(np.zeros((4, 6, 1), np.float32), rig)
    with pytest.raises(ValueError, match="positive"):
        disparity_to_depth(np.ones(3), 0.0, BASELINE)
    with pytest.raises(ValueError, match="numpy array or a torch tensor"):
        disparity_to_depth([1.0, 2.0], FOCAL, BASELINE)
