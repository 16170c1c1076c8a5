"""Synthetic inputs with known answers for the object-discovery tests."""

from __future__ import annotations

import numpy as np
import torch


def planted_keys(regions: np.ndarray, dim: int = 32, noise: float = 0.05, seed: int = 0) -> torch.Tensor:
    """``(h*w, dim)`` keys: every region id of ``regions (h, w)`` gets its own random key,
    plus Gaussian noise of standard deviation ``noise``."""
    generator = torch.Generator().manual_seed(seed)
    prototypes = torch.randn(int(regions.max()) + 1, dim, generator=generator)
    keys = prototypes[torch.as_tensor(regions.ravel())]
    return keys + noise * torch.randn(keys.shape, generator=generator)
