"""Torch edge-aware propagation: Lab against OpenCV, closed-form diffusion results, and the
network head built on it."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from kestrel_core.fusion.affinity_propagation import edge_weights, propagate, rgb_to_lab
from kestrel_core.fusion.learned_completion import CompletionNetConfig, DepthCompletionNet


def test_lab_matches_opencv(dtype):
    rgb = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    expected = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float64)
    tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(dtype) / 255.0
    lab = rgb_to_lab(tensor)[0].permute(1, 2, 0).double().numpy()
    assert np.abs(lab - expected).max() < 1.5  # OpenCV rounds to 8 bits


def measured_columns(height: int, width: int, left: float, right: float) -> tuple[torch.Tensor, torch.Tensor]:
    sparse = torch.zeros(1, 1, height, width)
    sparse[..., 0], sparse[..., -1] = left, right
    measured = torch.zeros_like(sparse, dtype=torch.bool)
    measured[..., 0] = measured[..., -1] = True
    return sparse, measured


def test_uniform_weights_converge_to_linear_interpolation():
    height, width = 6, 11
    sparse, measured = measured_columns(height, width, 2.0, 4.0)
    lab = torch.full((1, 3, height, width), 100.0)
    horizontal, vertical = edge_weights(lab, colour_sigma=4.0, floor=1e-6)
    depth = propagate(torch.full_like(sparse, 3.0), sparse, measured, horizontal, vertical, sweeps=3000)
    expected = 2.0 + 2.0 * torch.arange(width) / (width - 1)  # harmonic in 1-D: a straight line
    torch.testing.assert_close(depth[0, 0], expected.expand(height, width), atol=1e-4, rtol=0)


def test_depth_does_not_cross_a_colour_edge():
    height, width = 6, 12
    sparse, measured = measured_columns(height, width, 2.0, 4.0)
    rgb = torch.zeros(1, 3, height, width)
    rgb[:, 0, :, : width // 2] = 1.0  # red left half
    rgb[:, 2, :, width // 2 :] = 1.0  # blue right half
    horizontal, vertical = edge_weights(rgb_to_lab(rgb), colour_sigma=4.0, floor=1e-6)
    depth = propagate(torch.full_like(sparse, 3.0), sparse, measured, horizontal, vertical, sweeps=500)
    torch.testing.assert_close(depth[0, 0, :, : width // 2], torch.full((height, width // 2), 2.0), atol=1e-3, rtol=0)
    torch.testing.assert_close(depth[0, 0, :, width // 2 :], torch.full((height, width // 2), 4.0), atol=1e-3, rtol=0)


def test_propagation_head_starts_as_the_diffusion_and_keeps_measurements():
    torch.manual_seed(0)
    height, width = 20, 28
    model = DepthCompletionNet(CompletionNetConfig(base_channels=4, levels=2, head="propagation", sweeps=30)).eval()
    image = torch.rand(1, 3, height, width)
    sparse = torch.full((1, 1, height, width), float("nan"))
    sparse[..., ::5, ::3] = 2.0 + torch.rand(1, 1, 4, 10)
    prefill = torch.full_like(sparse, 3.0)
    with torch.inference_mode():
        depth, confidence = model(image, sparse, prefill, torch.zeros_like(sparse))
    measured = torch.isfinite(sparse)
    horizontal, vertical = edge_weights(rgb_to_lab(image), 4.0, 1e-6)
    expected = propagate(prefill, sparse.nan_to_num(), measured, horizontal, vertical, 30)  # zero-initialised head
    torch.testing.assert_close(depth, expected)
    torch.testing.assert_close(depth[measured], sparse[measured])
    assert depth.shape == confidence.shape == (1, 1, height, width)
    assert len(list(model.head.parameters())[1]) == 3  # two edge-weight scales and the confidence
