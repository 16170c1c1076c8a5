"""PCA colouring: fitted once, then the same features always get the same colours."""

import numpy as np
import pytest
import torch

from kestrel_core.features.pca import PCAProjector


def structured_features(seed: int, channels: int = 32, height: int = 12, width: int = 20) -> np.ndarray:
    """(C, h, w) features whose main variation is a left-to-right ramp along one direction."""
    rng = np.random.default_rng(seed)
    direction = np.zeros(channels)
    direction[3] = 1.0
    ramp = np.linspace(-5.0, 5.0, width)[None, :].repeat(height, axis=0)
    return direction[:, None, None] * ramp[None] + 0.1 * rng.standard_normal((channels, height, width))


def test_same_input_gives_the_same_colours_after_fit():
    features = structured_features(0)
    flat = features.reshape(features.shape[0], -1).T
    projector = PCAProjector().fit(flat)
    colours = projector.to_rgb(features)
    assert colours.shape == (12, 20, 3) and colours.dtype == np.uint8
    projector.to_rgb(structured_features(1) * 3.0)  # a different frame must not move the projection
    np.testing.assert_array_equal(projector.to_rgb(features), colours)
    # A second projector fitted on shuffled rows (a torch tensor) colours identically.
    shuffled = torch.from_numpy(flat[np.random.default_rng(2).permutation(len(flat))])
    np.testing.assert_array_equal(PCAProjector().fit(shuffled).to_rgb(torch.from_numpy(features)), colours)


def test_first_component_follows_the_dominant_variation():
    features = structured_features(0)
    colours = PCAProjector().fit(features.reshape(32, -1).T).to_rgb(features)
    red_by_column = colours[..., 0].astype(float).mean(axis=0)
    assert abs(np.corrcoef(red_by_column, np.arange(20))[0, 1]) > 0.99
    assert colours[..., 0].min() == 0 and colours[..., 0].max() == 255


def test_misuse_is_a_clear_error():
    with pytest.raises(RuntimeError, match="fit"):
        PCAProjector().to_rgb(np.zeros((4, 2, 2)))
    projector = PCAProjector().fit(np.random.default_rng(0).standard_normal((50, 4)))
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        projector.to_rgb(np.zeros((5, 2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        PCAProjector().fit(np.full((5, 4), np.nan))
