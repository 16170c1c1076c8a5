"""Normalized cut on synthetic token graphs with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kestrel_core.discovery.ncut import (
    DENSE_LIMIT,
    NCutConfig,
    bipartition,
    key_affinity,
    normalized_cut,
    spectral_embedding,
)

from discovery_synthetic import planted_keys


def two_blocks(h: int, w: int) -> np.ndarray:
    regions = np.zeros((h, w), np.int64)
    regions[h // 4: h // 2 + 2, w // 4: 3 * w // 4] = 1
    return regions


@pytest.mark.parametrize("grid", [(20, 30), (6, 8)])  # Lanczos / LOBPCG path and the dense path
def test_planted_blocks_are_recovered_exactly(grid, device):
    h, w = grid
    regions = two_blocks(h, w)
    keys = planted_keys(regions).to(device)
    assert (h * w > DENSE_LIMIT) == (grid == (20, 30))
    cut = normalized_cut(keys, grid, NCutConfig(tau=0.5))
    assert cut is not None
    np.testing.assert_array_equal(cut.mask, regions == 1)
    assert cut.cut_value < 1e-3          # eps-weighted edges only cross the cut
    assert cut.eigengap > 0.9            # within each block the graph is complete


def test_planted_affinity_blocks_give_the_exact_bipartition(device):
    """Straight from an affinity matrix: 1 within each block, eps across."""
    h, w = 12, 15
    regions = two_blocks(h, w).ravel()
    same = regions[:, None] == regions[None, :]
    affinity = torch.where(torch.as_tensor(same), 1.0, 1e-4).to(device=device, dtype=torch.float32)
    lambdas, vectors = spectral_embedding(affinity, count=3)
    assert lambdas[1] < 1e-3 < 0.9 < lambdas[2]
    mask = bipartition(vectors[:, 1].reshape(h, w), np.ones((h, w), bool))
    np.testing.assert_array_equal(mask, regions.reshape(h, w) == 1)


def test_generalized_eigenproblem_holds(device):
    """(D - W) y = lambda D y for the returned pairs, lambda_1 = 0 with constant y."""
    regions = two_blocks(12, 12)
    affinity = key_affinity(planted_keys(regions, noise=0.5).to(device), tau=0.3, eps=1e-3)
    lambdas, vectors = spectral_embedding(affinity, count=3)
    W = affinity.double().cpu().numpy()
    D = np.diag(W.sum(axis=1))
    for k in range(3):
        residual = (D - W) @ vectors[:, k] - lambdas[k] * D @ vectors[:, k]
        assert np.abs(residual).max() < 1e-3 * np.abs(D @ vectors[:, k]).max()
    assert lambdas[0] == pytest.approx(0.0, abs=1e-4)
    assert np.ptp(vectors[:, 0]) < 1e-3 * np.abs(vectors[:, 0]).max()
    assert np.all(np.diff(lambdas) >= -1e-6)


def test_identical_keys_give_no_cut():
    keys = torch.ones(15 * 15, 16)
    assert normalized_cut(keys, (15, 15)) is None


def test_foreground_is_the_side_off_the_border():
    """Both sides are whole blocks; the side holding most border tokens is background even
    when it holds the largest |y|."""
    h, w = 10, 10
    vector = np.full((h, w), -1.0)
    vector[3:7, 3:7] = 0.5           # inner block: smaller |y| than the surround
    mask = bipartition(vector, np.ones((h, w), bool))
    expected = np.zeros((h, w), bool)
    expected[3:7, 3:7] = True
    np.testing.assert_array_equal(mask, expected)


def test_only_the_largest_component_is_kept():
    vector = np.zeros((10, 12))
    vector[1:4, 1:4] = 1.0            # 9 tokens
    vector[5:9, 6:10] = 1.0           # 16 tokens, same side, not connected
    mask = bipartition(vector, np.ones(vector.shape, bool))
    assert mask.sum() == 16 and mask[5:9, 6:10].all()


def test_shape_errors_are_reported():
    with pytest.raises(ValueError, match="keys must be"):
        normalized_cut(torch.zeros(10, 4), (3, 4))
    with pytest.raises(ValueError, match="tau"):
        NCutConfig(tau=1.5)
