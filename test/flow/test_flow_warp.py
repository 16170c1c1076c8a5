"""backward_warp / flow_to_grid: integer shifts, sub-pixel semantics, masks and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kestrel_core.geometry.warp import backward_warp, flow_to_grid, pixel_grid


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shift", [(3, 0), (0, -2), (-4, 5), (1, 1)])
def test_integer_flow_equals_np_roll_on_the_interior(device, dtype, shift):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, size=(2, 3, 24, 32))
    du, dv = shift
    flow = torch.zeros(2, 2, 24, 32, dtype=dtype, device=device)
    flow[:, 0], flow[:, 1] = du, dv
    warped, valid = backward_warp(torch.tensor(images, dtype=dtype, device=device), flow)
    # warped(y, x) = image(y + dv, x + du) = np.roll by (-dv, -du)
    expected = np.roll(images, shift=(-dv, -du), axis=(2, 3))
    rows = slice(max(0, -dv), 24 - max(0, dv))
    cols = slice(max(0, -du), 32 - max(0, du))
    assert warped.dtype == dtype and warped.shape == (2, 3, 24, 32)
    # grid_sample works in normalised coordinates: float32 round-off moves samples by ~1e-6 px
    atol = 2e-5 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(warped[..., rows, cols].cpu().numpy(), expected[..., rows, cols], atol=atol)
    # the mask is True exactly where the sample point is inside the image
    mask = np.zeros((24, 32), bool)
    mask[rows, cols] = True
    assert valid.shape == (2, 1, 24, 32) and valid.dtype == torch.bool
    assert np.array_equal(valid[0, 0].cpu().numpy(), mask) and np.array_equal(valid[1, 0].cpu().numpy(), mask)


def test_border_padding_repeats_the_edge_and_zeros_padding_reads_zero(device):
    image = torch.arange(1.0, 6.0, device=device).view(1, 1, 1, 5).expand(1, 1, 3, 5).contiguous()
    flow = torch.zeros(1, 2, 3, 5, device=device)
    flow[:, 0] = 2.0
    border, valid = backward_warp(image, flow, padding="border")
    zeros, _ = backward_warp(image, flow, padding="zeros")
    assert border[0, 0, 0].tolist() == [3.0, 4.0, 5.0, 5.0, 5.0]
    assert zeros[0, 0, 0].tolist() == [3.0, 4.0, 5.0, 0.0, 0.0]
    assert valid[0, 0, 0].tolist() == [True, True, True, False, False]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sub_pixel_flow_samples_pixel_centres_at_integers(device, dtype):
    # bilinear sampling of a linear ramp is exact: image(x + u, y + v) = a (x + u) + b (y + v)
    height, width = 9, 13
    grid = pixel_grid(height, width, device, dtype)
    image = (0.5 * grid[:, 0:1] - 0.25 * grid[:, 1:2]).contiguous()
    flow = torch.empty(1, 2, height, width, dtype=dtype, device=device)
    flow[:, 0], flow[:, 1] = 0.3, -0.6
    warped, valid = backward_warp(image, flow)
    expected = image + 0.5 * 0.3 - 0.25 * -0.6
    inside = valid[0, 0]
    assert inside[1:, :-1].all() and not inside[0].any() and not inside[:, -1].any()
    torch.testing.assert_close(warped[0, 0][inside], expected[0, 0][inside])


def test_flow_to_grid_maps_pixel_centres_to_minus_one_and_plus_one():
    grid = flow_to_grid(torch.zeros(2, 2, 4, 6))
    assert grid.shape == (2, 4, 6, 2)
    assert grid[0, 0, 0].tolist() == [-1.0, -1.0] and grid[0, -1, -1].tolist() == [1.0, 1.0]
    # and grid_sample with align_corners=True then reproduces the image exactly
    image = torch.rand(2, 3, 4, 6)
    torch.testing.assert_close(F.grid_sample(image, grid, align_corners=True), image)


def test_non_finite_flow_is_invalid_and_does_not_poison_the_output():
    flow = torch.zeros(1, 2, 4, 4)
    flow[0, 0, 1, 2] = float("nan")
    flow[0, 1, 3, 3] = float("inf")
    warped, valid = backward_warp(torch.rand(1, 2, 4, 4), flow)
    assert torch.isfinite(warped).all()
    assert not valid[0, 0, 1, 2] and not valid[0, 0, 3, 3] and int(valid.sum()) == 14


def test_gradients_reach_image_and_flow():
    image = torch.rand(1, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    flow = torch.full((1, 2, 8, 8), 0.4, dtype=torch.float64, requires_grad=True)
    warped, _ = backward_warp(image, flow)
    warped.sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert flow.grad is not None and flow.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "image, flow, kwargs",
    [
        (torch.rand(1, 8, 8), torch.zeros(1, 2, 8, 8), {}),
        (torch.rand(1, 1, 8, 8), torch.zeros(1, 3, 8, 8), {}),
        (torch.rand(2, 1, 8, 8), torch.zeros(1, 2, 8, 8), {}),
        (torch.zeros(1, 1, 8, 8, dtype=torch.uint8), torch.zeros(1, 2, 8, 8), {}),
        (torch.rand(1, 1, 8, 8), torch.zeros(1, 2, 8, 8), {"padding": "wrap"}),
        (torch.rand(1, 1, 8, 8), torch.zeros(1, 2, 8, 8), {"mode": "area"}),
    ],
)
def test_bad_arguments_are_rejected(image, flow, kwargs):
    with pytest.raises(ValueError):
        backward_warp(image, flow, **kwargs)
