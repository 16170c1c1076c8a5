"""Window sums, median filter and flow upsampling shared by the flow methods, against
direct definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import median_filter as scipy_median

from kestrel_core.flow.filters import box_mean, box_sum, median_filter, upsample_flow, window_counts


@pytest.mark.parametrize("window", [3, 9, 15, 31])
def test_box_sum_equals_a_zero_padded_convolution(window, device):
    values = torch.rand(1, 3, 37, 52, dtype=torch.float64, device=device) - 0.5
    ones = torch.ones(3, 1, window, window, dtype=torch.float64, device=device)
    expected = F.conv2d(values, ones, padding=window // 2, groups=3)
    torch.testing.assert_close(box_sum(values, window), expected, rtol=0, atol=1e-12)


def test_box_mean_averages_only_pixels_inside_the_image():
    constant = torch.full((1, 1, 20, 30), 0.25)
    torch.testing.assert_close(box_mean(constant, 15), constant)  # clipped windows
    counts = window_counts(20, 30, 15, constant)
    assert counts[0, 0] == 8 * 8 and counts[10, 15] == 15 * 15 and counts[19, 29] == 8 * 8


def test_box_sum_keeps_small_values_exact_in_float32():
    # a running-sum difference would lose 1e-6 next to sums of order 1e2
    values = torch.full((1, 1, 64, 640), 1e-6)
    values[..., :320] = 1.0
    summed = box_sum(values, 15)[0, 0, 32, 400]
    assert abs(float(summed) - 225e-6) < 1e-11


def test_median_filter_matches_scipy_with_replicated_borders():
    rng = np.random.default_rng(3)
    values = rng.normal(size=(2, 23, 31)).astype(np.float32)
    result = median_filter(torch.from_numpy(values)[None], 5)[0].numpy()
    expected = np.stack([scipy_median(channel, size=5, mode="nearest") for channel in values])
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("size", [(40, 60), (41, 61)])
def test_upsampled_flow_doubles_and_follows_a_linear_field(size):
    height, width = size
    coarse_h, coarse_w = height // 2, width // 2
    ys, xs = torch.meshgrid(torch.arange(coarse_h, dtype=torch.float64), torch.arange(coarse_w, dtype=torch.float64),
                            indexing="ij")
    coarse = torch.stack((0.3 * xs - 1.0, 0.1 * ys + 0.2 * xs))[None]
    fine = upsample_flow(coarse, size)
    assert fine.shape == (1, 2, height, width)
    # fine pixel x reads the coarse field at (x - 0.5) / 2, exact for a linear field
    # wherever that point lies inside the coarse grid
    fy, fx = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                            indexing="ij")
    cx, cy = (fx - 0.5) / 2.0, (fy - 0.5) / 2.0
    expected = 2.0 * torch.stack((0.3 * cx - 1.0, 0.1 * cy + 0.2 * cx))
    inside = (cx >= 0) & (cx <= coarse_w - 1) & (cy >= 0) & (cy <= coarse_h - 1)
    torch.testing.assert_close(fine[0][:, inside], expected[:, inside], rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="cannot upsample"):
        upsample_flow(coarse, (height + 3, width))
