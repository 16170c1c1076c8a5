"""paint_points: exact colours at pixel centres, bilinear mixing, invisible points."""

from __future__ import annotations

import numpy as np
import torch

from kestrel_core.fusion import Projection, paint_points


def _projection(uv, visible, height, width):
    uv = torch.as_tensor(uv, dtype=torch.float32)
    return Projection(uv, torch.ones(len(uv)), torch.as_tensor(visible), height, width)


def test_exact_colours_at_integer_uv(device):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (3, 20, 30), dtype=np.uint8)
    u = rng.integers(0, 30, 200)
    v = rng.integers(0, 20, 200)
    proj = _projection(np.column_stack((u, v)), np.ones(200, bool), 20, 30)
    proj = Projection(proj.uv.to(device), proj.depth.to(device), proj.visible.to(device), 20, 30)
    painted, visible = paint_points(proj, torch.as_tensor(image))
    assert painted.shape == (200, 3) and painted.dtype == torch.float32 and painted.device.type == device
    np.testing.assert_allclose(painted.cpu().numpy(), image[:, v, u].T.astype(np.float32), atol=1e-3)
    assert visible.all()


def test_bilinear_half_pixels_and_invisible(device, dtype):
    features = torch.arange(2 * 4 * 5, dtype=dtype).reshape(2, 4, 5).to(device)  # any dense map
    f = features.cpu().double().numpy()
    uv = [[1.5, 2.0], [3.0, 0.5], [2.5, 1.5], [0.0, 0.0], [100.0, -3.0]]
    proj = _projection(uv, [True, True, True, True, False], 4, 5)
    proj = Projection(proj.uv.to(device, dtype), proj.depth, proj.visible.to(device), 4, 5)
    painted, visible = paint_points(proj, features)
    expected = np.stack(
        (
            (f[:, 2, 1] + f[:, 2, 2]) / 2,
            (f[:, 0, 3] + f[:, 1, 3]) / 2,
            (f[:, 1, 2] + f[:, 1, 3] + f[:, 2, 2] + f[:, 2, 3]) / 4,
            f[:, 0, 0],
            np.zeros(2),
        )
    )
    np.testing.assert_allclose(painted.cpu().double().numpy(), expected, atol=1e-4)
    assert visible.cpu().tolist() == [True, True, True, True, False]


def test_low_resolution_feature_map():
    # a (1, 3, 3) map for a 5x5 image: image pixel (4, 2) is the map's (2, 1)
    fmap = torch.arange(9.0).reshape(1, 3, 3)
    proj = _projection([[4.0, 2.0], [2.0, 2.0]], [True, True], 5, 5)
    painted, _ = paint_points(proj, fmap)
    np.testing.assert_allclose(painted[:, 0].numpy(), [5.0, 4.0])
