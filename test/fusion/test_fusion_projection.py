"""project_points: closed form, culling, distortion models against OpenCV, rectified P."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from kestrel_core.fusion import camera_uses_distortion, project_points
from kestrel_core.fusion.projection import max_monotonic_radius
from kestrel_core.geometry.camera import PinholeCamera

K = np.array([[500.0, 0.0, 320.0], [0.0, 480.0, 240.0], [0.0, 0.0, 1.0]])


def _camera(D=(), model="plumb_bob", K=K, **kw) -> PinholeCamera:
    return PinholeCamera(640, 480, K, np.asarray(D, float), distortion_model=model, **kw)


def test_closed_form_identity_extrinsic(device, dtype):
    cam = _camera()
    pts = torch.tensor([[0.5, -0.2, 4.0], [0.0, 0.0, 1.0], [-1.0, 0.7, 2.5]], dtype=dtype, device=device)
    proj = project_points(pts, np.eye(4), cam)
    X, Y, Z = pts.double().cpu().numpy().T
    expected = np.stack((500 * X / Z + 320, 480 * Y / Z + 240), axis=1)
    assert proj.uv.dtype == dtype and proj.uv.device.type == device
    np.testing.assert_allclose(proj.uv.cpu().double().numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(proj.depth.cpu().double().numpy(), Z, rtol=1e-6)
    assert proj.visible.all()


def test_extrinsic_is_applied(device):
    cam = _camera()
    # LiDAR frame (x forward, y left, z up) -> optical, plus 0.2 m along the optical x
    T = np.eye(4)
    T[:3, :3] = [[0, -1, 0], [0, 0, -1], [1, 0, 0]]
    T[:3, 3] = [0.2, 0.0, 0.0]
    pts = torch.tensor([[5.0, 1.0, 0.5]], device=device)  # 5 m ahead, 1 m left, 0.5 m up
    proj = project_points(pts, torch.as_tensor(T), cam)
    x, y, z = -1.0 + 0.2, -0.5, 5.0
    np.testing.assert_allclose(proj.uv.cpu().numpy()[0], [500 * x / z + 320, 480 * y / z + 240], rtol=1e-5)
    assert proj.depth.item() == pytest.approx(5.0)


def test_behind_and_outside_are_culled(device):
    cam = _camera()
    pts = torch.tensor(
        [
            [0.0, 0.0, 2.0],  # centre: visible
            [0.0, 0.0, -2.0],  # behind
            [0.0, 0.0, 0.0],  # at the centre of projection
            [0.0, 0.0, 0.05],  # closer than min_depth
            [10.0, 0.0, 1.0],  # far right
            [0.0, -5.0, 1.0],  # above the image
            [-320.4 / 500, -240.4 / 480, 1.0],  # u, v = -0.4: still in pixel (0, 0)
            [319.6 / 500, 239.4 / 480, 1.0],  # u = 639.6 (>= W - 0.5): out
        ],
        device=device,
    )
    proj = project_points(pts, np.eye(4), cam, min_depth=0.1)
    assert proj.visible.cpu().tolist() == [True, False, False, False, False, False, True, False]
    assert torch.isfinite(proj.uv).all()


def _random_points(rng, n=500, half_angle=0.6):
    xy = rng.uniform(-half_angle, half_angle, (n, 2))
    z = rng.uniform(0.5, 20.0, n)
    return np.column_stack((xy * z[:, None], z))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_plumb_bob_matches_opencv(seed, device):
    rng = np.random.default_rng(seed)
    D = np.concatenate((rng.uniform(-0.3, 0.3, 2), rng.uniform(-0.01, 0.01, 2), rng.uniform(-0.05, 0.05, 1)))
    cam = _camera(D)
    assert camera_uses_distortion(cam)
    pts = _random_points(rng)
    ref, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), K, D)
    proj = project_points(torch.as_tensor(pts, device=device), np.eye(4), cam)
    np.testing.assert_allclose(proj.uv.cpu().numpy(), ref[:, 0], atol=1e-6)
    # without distortion the rectified model [K | 0] is used
    plain = project_points(torch.as_tensor(pts, device=device), np.eye(4), cam, use_distortion=False)
    np.testing.assert_allclose(plain.uv.cpu().numpy(), (pts[:, :2] / pts[:, 2:]) @ K[:2, :2].T + K[:2, 2], atol=1e-6)


def test_rational_polynomial_matches_opencv(device):
    rng = np.random.default_rng(7)
    D = np.concatenate((rng.uniform(-0.3, 0.3, 2), rng.uniform(-0.01, 0.01, 2), rng.uniform(-0.05, 0.05, 4)))
    cam = _camera(D, "rational_polynomial")
    pts = _random_points(rng)
    ref, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), K, D)
    proj = project_points(torch.as_tensor(pts, device=device), np.eye(4), cam)
    np.testing.assert_allclose(proj.uv.cpu().numpy(), ref[:, 0], atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equidistant_matches_opencv_fisheye(seed, device):
    rng = np.random.default_rng(seed)
    D = rng.uniform(-0.05, 0.05, 4)
    K_skew = K.copy()
    K_skew[0, 1] = 0.5
    cam = _camera(D, "equidistant", K=K_skew)
    pts = _random_points(rng, half_angle=1.5)
    # cv2.fisheye ignores K[0, 1] and takes the skew as alpha = K[0, 1] / fx instead
    ref, _ = cv2.fisheye.projectPoints(pts[:, None], np.zeros(3), np.zeros(3), K_skew, D, alpha=0.5 / 500.0)
    proj = project_points(torch.as_tensor(pts, device=device), np.eye(4), cam)
    np.testing.assert_allclose(proj.uv.cpu().numpy(), ref[:, 0], atol=1e-6)


def test_folded_distortion_is_culled(device):
    # k1 = -0.5: r_d = r - 0.5 r^3 peaks at r = sqrt(2/3) and then folds back, so a point
    # at r = 1.5 would land near the image centre (r_d = -0.19) although it is far outside
    cam = _camera([-0.5, 0.0, 0.0, 0.0, 0.0])
    assert max_monotonic_radius(cam) == pytest.approx(np.sqrt(2 / 3), abs=2e-3)
    pts = torch.tensor([[1.5, 0.0, 1.0], [0.3, 0.0, 1.0]], device=device)
    proj = project_points(pts, np.eye(4), cam)
    assert proj.visible.cpu().tolist() == [False, True]
    assert max_monotonic_radius(_camera([0.1, 0.0, 0.0, 0.0, 0.0])) == 20.0


def test_rectified_camera_uses_R_and_P(device):
    # a rectified right camera: P has its own intrinsics and P[0, 3] = -fx' * baseline
    R = cv2.Rodrigues(np.array([0.01, -0.02, 0.005]))[0]
    P = np.array([[450.0, 0.0, 300.0, -450.0 * 0.12], [0.0, 450.0, 250.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    cam = _camera(np.zeros(5), R=R, P=P)
    assert not camera_uses_distortion(cam)
    pts = _random_points(np.random.default_rng(3), n=50, half_angle=0.4)
    proj = project_points(torch.as_tensor(pts, device=device), np.eye(4), cam)
    rect = pts @ R.T
    homog = rect @ P[:, :3].T + P[:, 3]
    np.testing.assert_allclose(proj.uv.cpu().numpy(), homog[:, :2] / homog[:, 2:], atol=1e-6)
    np.testing.assert_allclose(proj.depth.cpu().numpy(), rect[:, 2], atol=1e-6)


def test_shape_errors():
    cam = _camera()
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        project_points(torch.zeros(4, 2), np.eye(4), cam)
    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        project_points(torch.zeros(4, 3), np.eye(3), cam)
    with pytest.raises(ValueError, match="min_depth"):
        project_points(torch.zeros(4, 3), np.eye(4), cam, min_depth=-1.0)
