"""A map memory's channels as a colour image, for display (the node's ``map/features``).

Every observed cell is a point in channel space (log-odds, hit weight, heights, then any
feature channels). The channels are standardised over the observed cells, and their first
three principal components become red, green and blue (:class:`PCAProjector`, 1st to 99th
percentile stretched to 0-255). The basis is fitted on each call, so colours compare within
one image, not between images.
"""

from __future__ import annotations

import numpy as np

from kestrel_core.features.pca import PCAProjector
from kestrel_core.mapping.memory import LOG_ODDS, WEIGHT, MapMemory


def feature_colours(memory: MapMemory) -> np.ndarray:
    """(H, W, 3) uint8 colours of the map's (C, H, W) channels, in the map's cell layout.

    Pure black (0, 0, 0) marks exactly the cells never observed (no hit weight, log-odds 0);
    an observed cell has every component at least 1.
    """
    grid = memory.grid.detach().cpu().numpy().astype(np.float64)  # (C, H, W)
    observed = (grid[WEIGHT] > 0) | (grid[LOG_ODDS] != 0)
    image = np.zeros(grid.shape[1:] + (3,), np.uint8)
    if observed.sum() < 2:
        return image
    cells = grid[:, observed].T  # (N, C)
    cells = (cells - cells.mean(axis=0)) / np.maximum(cells.std(axis=0), 1e-9)
    projector = PCAProjector().fit(cells)
    image[observed] = np.maximum(projector.to_rgb(cells.T[:, :, None])[:, 0], 1)
    return image
