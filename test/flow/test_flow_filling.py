"""Occlusion detection and filling of unreliable flow on synthetic cases with a closed-form
answer."""

from __future__ import annotations

import pytest
import torch

from kestrel_core.flow.consistency import forward_backward_occlusion
from kestrel_core.flow.filling import edge_aware_fill, neighbour_weights, push_pull_fill


def _constant(value: tuple[float, float], height: int, width: int) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float64).view(1, 2, 1, 1).expand(1, 2, height, width).clone()


def test_forward_backward_check_finds_the_occluded_band_and_the_pixels_leaving_the_image():
    height, width = 12, 40
    forward = _constant((3.0, 0.0), height, width)
    backward = _constant((-3.0, 0.0), height, width)
    backward[..., 20:30] = torch.tensor([5.0, 0.0], dtype=torch.float64).view(1, 2, 1, 1)  # another surface
    occluded = forward_backward_occlusion(forward, backward)[0, 0]
    # x + 3 lands in columns 20..29 for x in 17..26, and leaves the image for x >= 37
    expected = torch.zeros(width, dtype=torch.bool)
    expected[17:27] = True
    expected[37:] = True
    assert torch.equal(occluded, expected.expand(height, width))


def test_push_pull_fills_any_hole_of_a_constant_field_exactly():
    values = _constant((1.5, -2.0), 33, 47)
    reliable = torch.zeros(1, 1, 33, 47, dtype=torch.bool)
    reliable[..., 30:, 44:] = True  # only a small corner is known
    garbage = torch.where(reliable, values, torch.full_like(values, 99.0))
    torch.testing.assert_close(push_pull_fill(garbage, reliable), values)


def test_edge_aware_fill_of_a_linear_field_with_a_uniform_guide_is_exact():
    # the fill solves the Laplace equation, whose solution with linear boundary values is linear
    height, width = 40, 50
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                            indexing="ij")
    field = torch.stack((0.2 * xs - 0.1 * ys + 1.0, -0.05 * xs + 0.3 * ys))[None]
    reliable = torch.ones(1, 1, height, width, dtype=torch.bool)
    reliable[..., 10:22, 15:30] = False
    holes = torch.where(reliable, field, torch.zeros_like(field))
    guide = torch.full((1, 1, height, width), 0.5, dtype=torch.float64)
    filled = edge_aware_fill(holes, reliable, guide, sigma=0.05, iterations=600)
    torch.testing.assert_close(filled, field, rtol=0, atol=1e-4)


def test_edge_aware_fill_does_not_cross_an_image_edge():
    # two surfaces, dark (flow A) left of column 25 and bright (flow B) right of it; the hole
    # straddles the edge and each side is filled from its own surface only (the slowest
    # Jacobi mode of the 20 x 8 hole side decays by about 0.986 per step: 2000 steps suffice)
    height, width = 30, 50
    guide = torch.zeros(1, 1, height, width, dtype=torch.float64)
    guide[..., 25:] = 1.0
    field = _constant((2.0, 1.0), height, width)
    field[..., 25:] = torch.tensor([-4.0, 0.5], dtype=torch.float64).view(1, 2, 1, 1)
    reliable = torch.ones(1, 1, height, width, dtype=torch.bool)
    reliable[..., 5:25, 18:33] = False
    filled = edge_aware_fill(torch.where(reliable, field, torch.zeros_like(field)), reliable, guide,
                             sigma=0.03, iterations=2000)
    torch.testing.assert_close(filled, field, rtol=0, atol=1e-6)


def test_neighbour_weights_drop_across_edges_and_vanish_at_the_border():
    guide = torch.zeros(1, 1, 4, 6)
    guide[..., 3:] = 0.1
    weights = neighbour_weights(guide, sigma=0.05)
    assert torch.allclose(weights.right[0, 0, :, 2], torch.exp(torch.tensor(-2.0)))
    assert weights.right[0, 0, :, 0].eq(1.0).all() and weights.right[0, 0, :, -1].eq(0.0).all()
    assert weights.left[0, 0, :, 0].eq(0.0).all() and weights.up[0, 0, 0].eq(0.0).all()
    with pytest.raises(ValueError, match="sigma"):
        neighbour_weights(guide, sigma=0.0)
