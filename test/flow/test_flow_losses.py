"""SSIM, photometric loss and edge-aware smoothness on real and constructed images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kestrel_core.losses import edge_aware_smoothness, photometric_error, photometric_loss, ssim


def _as_batch(image: np.ndarray, dtype: torch.dtype, device: str) -> torch.Tensor:
    return torch.tensor(image / 255.0, dtype=dtype, device=device)[None, None]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ssim_of_an_image_with_itself_is_one(real_crop, device, dtype):
    x = _as_batch(real_crop, dtype, device)
    x = torch.cat((x, 1.0 - x), dim=1)  # two channels
    result = ssim(x, x)
    assert result.shape == x.shape and result.dtype == dtype
    torch.testing.assert_close(result, torch.ones_like(result))


@pytest.mark.parametrize("window", [3, 7])
def test_ssim_decreases_as_noise_grows(real_crop, device, window):
    x = _as_batch(real_crop, torch.float32, device)
    generator = torch.Generator(device="cpu").manual_seed(0)
    noise = torch.randn(x.shape, generator=generator).to(device)
    means = [float(ssim(x, x + sigma * noise, window=window).mean()) for sigma in (0.01, 0.03, 0.1, 0.3)]
    assert means[0] < 1.0 and all(a > b for a, b in zip(means, means[1:]))
    assert means[-1] < 0.5


def test_ssim_matches_its_definition_at_one_pixel():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 1, (2, 10, 12))
    result = ssim(torch.tensor(x)[None, None], torch.tensor(y)[None, None], window=3)[0, 0]
    # interior pixel (4, 5): plain statistics of the 3x3 neighbourhood
    px, py = x[3:6, 4:7].ravel(), y[3:6, 4:7].ravel()
    mx, my = px.mean(), py.mean()
    vx, vy, cxy = px.var(), py.var(), ((px - mx) * (py - my)).mean()
    c1, c2 = 0.01**2, 0.03**2
    expected = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    assert float(result[4, 5]) == pytest.approx(expected, rel=1e-9)
    # corner pixel (0, 0): reflection padding mirrors row/column 1 (not the edge itself)
    rows, cols = [1, 0, 1], [1, 0, 1]
    px, py = x[np.ix_(rows, cols)].ravel(), y[np.ix_(rows, cols)].ravel()
    mx, my = px.mean(), py.mean()
    vx, vy, cxy = px.var(), py.var(), ((px - mx) * (py - my)).mean()
    expected = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    assert float(result[0, 0]) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_photometric_loss_is_zero_for_identical_images_and_grows_with_difference(real_crop, device, dtype):
    x = _as_batch(real_crop, dtype, device).expand(2, 3, -1, -1).contiguous()
    assert float(photometric_loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    small = photometric_loss(x, (x + 0.02).clamp(0, 1))
    large = photometric_loss(x, torch.flip(x, dims=[-1]))
    assert 0 < float(small) < float(large)
    assert photometric_error(x, x).shape == (2, 1, 256, 256)


def test_photometric_loss_without_ssim_is_the_mean_absolute_difference():
    a, b = torch.rand(2, 1, 3, 8, 8, dtype=torch.float64)
    assert float(photometric_loss(a, b, alpha=0.0)) == pytest.approx(float((a - b).abs().mean()))


def test_photometric_loss_masks_average_over_the_selected_pixels_only():
    a = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    b = a.clone()
    b[..., :, 8:] = torch.rand(1, 3, 16, 8, dtype=torch.float64)  # differ on the right half only
    left = torch.zeros(1, 1, 16, 16, dtype=torch.bool)
    left[..., :, :6] = True  # away from the SSIM window of the changed half
    assert float(photometric_loss(a, b, mask=left)) == pytest.approx(0.0, abs=1e-12)
    error = photometric_error(a, b)
    right = ~left
    assert float(photometric_loss(a, b, mask=right)) == pytest.approx(float(error[right].mean()))
    # float weights act as a weighted mean; an empty mask gives 0, not NaN
    assert float(photometric_loss(a, b, mask=right.double() * 0.5)) == pytest.approx(float(error[right].mean()))
    empty = photometric_loss(a, b, mask=torch.zeros(1, 1, 16, 16, dtype=torch.bool))
    assert float(empty) == 0.0


def test_edge_aware_smoothness_is_zero_for_a_constant_field(device):
    field = torch.full((2, 2, 20, 30), 3.5, device=device)
    image = torch.rand(2, 3, 20, 30, device=device)
    assert float(edge_aware_smoothness(field, image)) == 0.0


def test_a_field_step_costs_less_on_an_image_edge_than_in_a_flat_region(device):
    # image: dark left half, bright right half - one vertical edge between columns 15 and 16
    image = torch.zeros(1, 3, 20, 32, device=device)
    image[..., 16:] = 1.0
    step_on_edge = torch.zeros(1, 1, 20, 32, device=device)
    step_on_edge[..., 16:] = 2.0
    step_in_flat = torch.zeros(1, 1, 20, 32, device=device)
    step_in_flat[..., 8:] = 2.0
    on_edge = float(edge_aware_smoothness(step_on_edge, image))
    in_flat = float(edge_aware_smoothness(step_in_flat, image))
    # same field variation, weighted by exp(-1) on the edge and by 1 in the flat region
    assert on_edge == pytest.approx(in_flat * np.exp(-1.0), rel=1e-6)
    assert on_edge < in_flat
    # a one-channel image works the same way
    assert float(edge_aware_smoothness(step_on_edge, image[:, :1])) == pytest.approx(on_edge, rel=1e-6)


def test_smoothness_is_differentiable_and_checks_shapes():
    field = torch.rand(1, 2, 8, 8, requires_grad=True)
    edge_aware_smoothness(field, torch.rand(1, 3, 8, 8)).backward()
    assert field.grad is not None and field.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        edge_aware_smoothness(field, torch.rand(1, 2, 8, 8))
    with pytest.raises(ValueError):
        edge_aware_smoothness(field, torch.rand(1, 3, 8, 9))


def test_bad_ssim_arguments_are_rejected():
    x = torch.rand(1, 1, 8, 8)
    for kwargs in ({"window": 4}, {"window": 0}, {"c1": 0.0}, {"window": 17}):
        with pytest.raises(ValueError):
            ssim(x, x, **kwargs)
    with pytest.raises(ValueError):
        ssim(x, torch.rand(1, 1, 8, 9))
    with pytest.raises(ValueError):
        photometric_loss(x, x, alpha=1.5)
