"""Z-buffered sparse depth images and spherical range images."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kestrel_core.fusion import RangeImageConfig, project_points, range_image, sparse_depth_image, spherical_indices
from kestrel_core.geometry.camera import PinholeCamera

CAM = PinholeCamera(64, 48, np.array([[50.0, 0, 32.0], [0, 50.0, 24.0], [0, 0, 1]]), np.zeros(5))


def test_zbuffer_keeps_nearest(device, dtype):
    # three points on the ray through pixel (u=40, v=10), one on pixel (u=5, v=30)
    ray = np.array([(40 - 32) / 50.0, (10 - 24) / 50.0, 1.0])
    pts = np.vstack((ray * 3.0, ray * 1.5, ray * 7.0, [(5 - 32) / 50 * 2, (30 - 24) / 50 * 2, 2.0], [0, 0, -1.0]))
    proj = project_points(torch.as_tensor(pts, dtype=dtype, device=device), np.eye(4), CAM)
    depth = sparse_depth_image(proj, CAM.height, CAM.width)
    assert depth.shape == (48, 64) and depth.dtype == torch.float32 and depth.device.type == device
    got = depth.cpu().numpy()
    assert got[10, 40] == pytest.approx(1.5)
    assert got[30, 5] == pytest.approx(2.0)
    assert np.isfinite(got).sum() == 2


def test_zbuffer_order_independent(device):
    rng = np.random.default_rng(0)
    pts = np.column_stack((rng.uniform(-0.5, 0.5, (2000, 2)), np.ones(2000))) * rng.uniform(1, 10, (2000, 1))
    a = sparse_depth_image(project_points(torch.as_tensor(pts, device=device), np.eye(4), CAM), 48, 64)
    perm = rng.permutation(len(pts))
    b = sparse_depth_image(project_points(torch.as_tensor(pts[perm], device=device), np.eye(4), CAM), 48, 64)
    assert torch.equal(torch.isnan(a), torch.isnan(b))
    assert torch.equal(a[~torch.isnan(a)], b[~torch.isnan(b)])
    # brute-force reference: the min depth per pixel
    proj = project_points(torch.as_tensor(pts), np.eye(4), CAM)
    uv = torch.round(proj.uv[proj.visible]).long().numpy()
    ref = np.full((48, 64), np.inf)
    np.minimum.at(ref, (uv[:, 1], uv[:, 0]), proj.depth[proj.visible].numpy())
    np.testing.assert_allclose(a.cpu().numpy(), np.where(np.isinf(ref), np.nan, ref), rtol=1e-6)


def test_range_image_of_sphere(device, dtype):
    config = RangeImageConfig(height=32, width=360, fov_up_deg=10.0, fov_down_deg=-30.0)
    rng = np.random.default_rng(1)
    elev = np.radians(rng.uniform(-29.9, 9.9, 50000))
    az = rng.uniform(-math.pi, math.pi, 50000)
    dirs = np.column_stack((np.cos(elev) * np.cos(az), np.cos(elev) * np.sin(az), np.sin(elev)))
    radius = 7.25
    near = torch.as_tensor(dirs * radius, dtype=dtype, device=device)
    far = torch.as_tensor(dirs[:20000] * 20.0, dtype=dtype, device=device)  # hidden behind the sphere
    image = range_image(torch.cat((far, near)), config)
    assert image.shape == (32, 360) and image.device.type == device
    filled = ~torch.isnan(image)
    assert filled.float().mean() > 0.95
    torch.testing.assert_close(image[filled], torch.full_like(image[filled], radius))


def test_range_image_layout():
    config = RangeImageConfig(height=10, width=8, fov_up_deg=5.0, fov_down_deg=-5.0)
    pts = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.6], [0.0, 0.0, 0.0]])
    rows, cols, ranges, valid = spherical_indices(pts, config)
    assert valid.tolist() == [True, True, True, False, False]  # 31 deg up is outside; zero range
    assert rows[:3].tolist() == [5, 5, 5]
    assert cols[:3].tolist() == [4, 2, 6]  # forward at the centre; left (+y) to its left


@pytest.mark.parametrize(
    "kwargs", [dict(height=0), dict(width=-1), dict(fov_up_deg=-30.0, fov_down_deg=-10.0), dict(min_range=-1.0)]
)
def test_range_config_validation(kwargs):
    with pytest.raises(ValueError):
        RangeImageConfig(**kwargs)
