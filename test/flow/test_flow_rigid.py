"""rigid_flow against closed-form camera motions and an explicit projection."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kestrel_core.geometry.rigid_flow import rigid_flow
from kestrel_core.geometry.stereo import depth_to_disparity

FX, FY, CX, CY = 420.0, 410.0, 31.5, 23.25
HEIGHT, WIDTH = 48, 64


def _intrinsics(fx: float = FX, fy: float = FY) -> np.ndarray:
    return np.array([[fx, 0.0, CX], [0.0, fy, CY], [0.0, 0.0, 1.0]])


def _pose(rotation: np.ndarray | None = None, translation=(0.0, 0.0, 0.0)) -> np.ndarray:
    T = np.eye(4)
    if rotation is not None:
        T[:3, :3] = rotation
    T[:3, 3] = translation
    return T


def _rot_z(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _pixels(dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    return xs.astype(dtype), ys.astype(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_identity_pose_gives_zero_flow(device, dtype):
    depth = torch.rand(2, 1, HEIGHT, WIDTH, dtype=dtype, device=device) * 10 + 0.5
    flow = rigid_flow(depth, _intrinsics(), np.eye(4))
    assert flow.shape == (2, 2, HEIGHT, WIDTH) and flow.dtype == dtype and flow.device.type == device
    torch.testing.assert_close(flow, torch.zeros_like(flow), atol=1e-4, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_translation_along_x_at_constant_depth_is_fx_tx_over_z(device, dtype):
    depth_z, tx = 4.0, 0.25
    depth = torch.full((1, 1, HEIGHT, WIDTH), depth_z, dtype=dtype, device=device)
    flow = rigid_flow(depth, torch.tensor(_intrinsics()), torch.tensor(_pose(translation=(tx, 0.0, 0.0))))
    torch.testing.assert_close(flow[:, 0], torch.full_like(flow[:, 0], FX * tx / depth_z))
    torch.testing.assert_close(flow[:, 1], torch.zeros_like(flow[:, 1]), atol=1e-4, rtol=0)


@pytest.mark.parametrize("fy", [FX, 380.0])
def test_rotation_about_the_optical_axis(device, fy):
    theta = math.radians(3.0)
    depth = torch.rand(1, 1, HEIGHT, WIDTH, dtype=torch.float64, device=device) * 5 + 1  # any depth
    flow = rigid_flow(depth, _intrinsics(FX, fy), _pose(_rot_z(theta))).cpu().numpy()[0]
    xs, ys = _pixels()
    dx, dy = xs - CX, ys - CY
    # X' = cos X - sin Y, Y' = sin X + cos Y at unchanged Z, in pixels:
    u_expected = math.cos(theta) * dx - math.sin(theta) * (FX / fy) * dy - dx
    v_expected = math.sin(theta) * (fy / FX) * dx + math.cos(theta) * dy - dy
    np.testing.assert_allclose(flow[0], u_expected, atol=1e-9)
    np.testing.assert_allclose(flow[1], v_expected, atol=1e-9)
    if fy == FX:  # a plain 2-D rotation of the image about the principal point
        radius = np.hypot(dx + flow[0], dy + flow[1])
        np.testing.assert_allclose(radius, np.hypot(dx, dy), atol=1e-9)


def test_general_motion_matches_explicit_projection():
    rng = np.random.default_rng(3)
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = 0.05
    skew = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rotation = np.eye(3) + math.sin(angle) * skew + (1 - math.cos(angle)) * skew @ skew
    T = _pose(rotation, (0.1, -0.05, 0.3))
    depth = rng.uniform(2.0, 8.0, size=(HEIGHT, WIDTH))
    flow = rigid_flow(torch.tensor(depth)[None, None], _intrinsics(), T).numpy()[0]
    xs, ys = _pixels()
    points = np.stack(((xs - CX) * depth / FX, (ys - CY) * depth / FY, depth), axis=-1)
    moved = points @ rotation.T + T[:3, 3]
    u_expected = FX * moved[..., 0] / moved[..., 2] + CX - xs
    v_expected = FY * moved[..., 1] / moved[..., 2] + CY - ys
    np.testing.assert_allclose(flow[0], u_expected, atol=1e-9)
    np.testing.assert_allclose(flow[1], v_expected, atol=1e-9)


def test_stereo_baseline_gives_minus_the_disparity():
    # the right camera sits at +B along x: left-frame points are at X - B in it
    baseline = 0.12
    depth = torch.tensor(np.random.default_rng(4).uniform(1.0, 20.0, (1, 1, HEIGHT, WIDTH)))
    K = _intrinsics(FX, FX)
    flow = rigid_flow(depth, K, _pose(translation=(-baseline, 0.0, 0.0)))
    torch.testing.assert_close(flow[:, 0], -depth_to_disparity(depth[:, 0], FX, baseline))
    assert float(flow[:, 1].abs().max()) < 1e-9


def test_per_batch_intrinsics_and_poses():
    depth = torch.full((2, 1, HEIGHT, WIDTH), 5.0, dtype=torch.float64)
    K = np.stack((_intrinsics(), _intrinsics(2 * FX, 2 * FY)))
    T = np.stack((_pose(translation=(0.5, 0.0, 0.0)), _pose(translation=(0.0, 0.5, 0.0))))
    flow = rigid_flow(depth, K, T)
    torch.testing.assert_close(flow[0, 0], torch.full((HEIGHT, WIDTH), FX * 0.5 / 5.0, dtype=torch.float64))
    torch.testing.assert_close(flow[1, 1], torch.full((HEIGHT, WIDTH), 2 * FY * 0.5 / 5.0, dtype=torch.float64))
    assert float(flow[0, 1].abs().max()) < 1e-9 and float(flow[1, 0].abs().max()) < 1e-9


def test_unknown_depth_and_points_behind_the_camera_give_nan():
    depth = torch.full((1, 1, HEIGHT, WIDTH), 2.0, dtype=torch.float64)
    depth[0, 0, 5, 7] = float("nan")
    depth[0, 0, 6, 8] = 0.0
    depth[0, 0, 10, 10] = 0.5  # lands behind camera 2, which moved 1 m forward
    flow = rigid_flow(depth, _intrinsics(), _pose(translation=(0.0, 0.0, -1.0)))
    nan = torch.isnan(flow).all(dim=1)[0]
    assert nan[5, 7] and nan[6, 8] and nan[10, 10] and int(nan.sum()) == 3
    assert torch.isnan(flow).sum() == 6


def test_rigid_flow_is_differentiable_in_depth_and_pose():
    depth = torch.full((1, 1, 6, 8), 3.0, dtype=torch.float64, requires_grad=True)
    T = torch.tensor(_pose(translation=(0.1, 0.0, 0.05)), requires_grad=True)
    rigid_flow(depth, _intrinsics(), T).pow(2).sum().backward()
    assert depth.grad is not None and torch.isfinite(depth.grad).all() and depth.grad.abs().sum() > 0
    assert T.grad is not None and T.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "depth, K, T",
    [
        (torch.ones(1, 6, 8), _intrinsics(), np.eye(4)),
        (torch.ones(1, 2, 6, 8), _intrinsics(), np.eye(4)),
        (torch.ones(1, 1, 6, 8), np.eye(4), np.eye(4)),
        (torch.ones(1, 1, 6, 8), _intrinsics(), np.eye(3)),
        (torch.ones(2, 1, 6, 8), _intrinsics(), np.stack([np.eye(4)] * 3)),
        (torch.ones(1, 1, 6, 8), np.zeros((3, 3)), np.eye(4)),
    ],
)
def test_bad_arguments_are_rejected(depth, K, T):
    with pytest.raises(ValueError):
        rigid_flow(depth, K, T)
