"""Continuous BEV fusion against closed-form cases and a brute-force reference."""

import numpy as np
import pytest
import torch

from kestrel_core.fusion.continuous import (
    BevGridConfig,
    ContinuousFusion,
    bev_cell_centres,
    bev_height_occupancy,
    bev_mean_features,
    knn,
)

GRID = BevGridConfig(x_range=(0.0, 4.0), y_range=(-2.0, 2.0), resolution=1.0)  # 4 x 4 cells


def offset_only_fusion(in_channels: int, k: int) -> ContinuousFusion:
    """A single linear layer that outputs the 3-D offset x_j - x_i and ignores features."""
    fusion = ContinuousFusion(in_channels, 3, hidden=(), k=k)
    linear = fusion.mlp[0]
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.zero_()
        linear.weight[:, in_channels:] = torch.eye(3)
    return fusion


def test_height_occupancy_and_count_are_exact():
    points = torch.tensor([[0.5, -1.5, 0.2], [0.7, -1.2, 1.4], [3.9, 1.9, -0.3], [9.0, 0.0, 5.0],
                           [float("nan"), 0.0, 0.0]])
    bev = bev_height_occupancy(points, GRID)
    assert bev.shape == (3, 4, 4)
    occupancy = np.zeros((4, 4))
    occupancy[0, 0] = occupancy[3, 3] = 1  # rows along y from y_min, columns along x
    np.testing.assert_array_equal(bev[1].numpy(), occupancy)
    assert bev[0, 0, 0] == pytest.approx(1.4) and bev[0, 3, 3] == pytest.approx(-0.3)
    assert torch.isnan(bev[0][bev[1] == 0]).all()
    assert bev[2, 0, 0] == 2 and bev[2].sum() == 3  # outside and NaN points are not counted


def test_cell_centres_follow_occupancy_grid_layout():
    centres = bev_cell_centres(GRID).reshape(4, 4, 2)
    np.testing.assert_allclose(centres[0, 0].numpy(), [0.5, -1.5])
    np.testing.assert_allclose(centres[0, 3].numpy(), [3.5, -1.5])
    np.testing.assert_allclose(centres[3, 0].numpy(), [0.5, 1.5])


def test_knn_matches_brute_force_on_cpu_and_cdist_paths():
    generator = torch.Generator().manual_seed(0)
    references = torch.rand(200, 2, generator=generator) * 10
    queries = torch.rand(50, 2, generator=generator) * 10
    distances, indices = knn(queries, references, 5)
    full = torch.cdist(queries.double(), references.double())
    expected = full.topk(5, dim=1, largest=False)
    np.testing.assert_array_equal(indices.numpy(), expected.indices.numpy())
    np.testing.assert_allclose(distances.numpy(), expected.values.numpy(), rtol=1e-6)
    assert knn(queries, references[:3], 8)[1].shape == (50, 3)  # k clipped to the references


def test_offset_kernel_sums_offsets_of_the_k_nearest_points():
    points = torch.tensor([[0.2, -1.8, 0.5], [0.6, -1.1, -0.5], [3.1, 1.2, 2.0], [2.5, 0.5, 1.0]])
    features = torch.randn(4, 2)
    fusion = offset_only_fusion(2, k=2)
    bev = fusion(points, features, GRID).detach()
    assert bev.shape == (3, 4, 4)
    centres = bev_cell_centres(GRID).numpy()
    occupied_cells = {0, 15, 10}  # (0,0), (3,3), (2,2)
    for cell in occupied_cells:
        distance = np.linalg.norm(points[:, :2].numpy() - centres[cell], axis=1)
        nearest = np.argsort(distance)[:2]
        expected = (points[nearest].numpy() - np.append(centres[cell], 0.0)).sum(axis=0)
        np.testing.assert_allclose(bev[:, cell // 4, cell % 4].numpy(), expected, atol=1e-5)


def test_empty_cells_interpolate_their_nearest_occupied_cells():
    # two occupied cells in row 0 at columns 0 and 2; the empty cell (0, 1) lies half-way
    points = torch.tensor([[0.5, -1.5, 1.0], [2.5, -1.5, 3.0]])
    fusion = offset_only_fusion(1, k=1)
    bev = fusion(points, torch.zeros(2, 1), GRID).detach()
    np.testing.assert_allclose(bev[:, 0, 0].numpy(), [0, 0, 1.0], atol=1e-6)
    np.testing.assert_allclose(bev[:, 0, 2].numpy(), [0, 0, 3.0], atol=1e-6)
    fusion.k = 2  # two nearest occupied cells at equal distance: their mean
    bev = fusion(points, torch.zeros(2, 1), GRID).detach()
    np.testing.assert_allclose(bev[:, 0, 0].numpy(), [2.0, 0, 4.0], atol=1e-5)  # both points
    np.testing.assert_allclose(bev[:, 0, 1].numpy(), (bev[:, 0, 0] + bev[:, 0, 2]).numpy() / 2, atol=1e-5)


def test_features_pass_through_and_gradients_reach_mlp_and_features():
    points = torch.rand(64, 3) * torch.tensor([4.0, 4.0, 1.0]) - torch.tensor([0.0, 2.0, 0.0])
    features = torch.rand(64, 4, requires_grad=True)
    fusion = ContinuousFusion(4, 6, hidden=(16,), k=4)
    bev = fusion(points, features, GRID)
    assert bev.shape == (6, 4, 4) and torch.isfinite(bev).all()
    bev.square().sum().backward()
    assert features.grad is not None and features.grad.abs().sum() > 0
    assert all(p.grad is not None for p in fusion.parameters())


def test_no_points_gives_zeros_and_bad_shapes_raise():
    fusion = ContinuousFusion(2, 3, k=2)
    assert fusion(torch.empty(0, 3), torch.empty(0, 2), GRID).abs().sum().item() == 0
    with pytest.raises(ValueError):
        fusion(torch.zeros(5, 2), torch.zeros(5, 2), GRID)
    with pytest.raises(ValueError):
        fusion(torch.zeros(5, 3), torch.zeros(5, 3), GRID)
    with pytest.raises(ValueError):
        BevGridConfig(resolution=0.0)


def test_mean_features_average_the_points_of_each_cell():
    points = torch.tensor([[0.5, -1.5, 0.0], [0.6, -1.4, 0.0], [3.5, 1.5, 0.0]])
    colours = torch.tensor([[10.0, 0.0], [20.0, 2.0], [5.0, 5.0]])
    means = bev_mean_features(points, colours, GRID)
    np.testing.assert_allclose(means[:, 0, 0].numpy(), [15.0, 1.0])
    np.testing.assert_allclose(means[:, 3, 3].numpy(), [5.0, 5.0])
    assert torch.isnan(means[:, 1, 1]).all()
