"""Colour dense features by their three principal components, with a projection fitted once
and then kept fixed so that colours stay stable from frame to frame."""

from __future__ import annotations

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


def _as_numpy(values: ArrayLike) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


class PCAProjector:
    """Three-component PCA mapping features to RGB.

    ``fit`` computes the mean, the top three principal directions (each sign chosen so that
    its largest-magnitude loading is positive, which makes the result independent of the
    solver's sign convention) and, per component, the ``[low, high]`` percentiles of the fit
    data that map to 0 and 255. Later calls to ``to_rgb`` reuse these numbers unchanged.
    """

    def __init__(self, clip_percentile: float = 1.0) -> None:
        if not 0.0 <= clip_percentile < 50.0:
            raise ValueError(f"clip_percentile must be in [0, 50), got {clip_percentile}")
        self.clip_percentile = clip_percentile
        self.mean: np.ndarray | None = None  # (C,)
        self.components: np.ndarray | None = None  # (C, 3)
        self.low: np.ndarray | None = None  # (3,)
        self.high: np.ndarray | None = None  # (3,)

    @property
    def fitted(self) -> bool:
        return self.components is not None

    def fit(self, features: ArrayLike) -> "PCAProjector":
        """Fit on ``features`` ``(N, C)`` with ``N >= 2`` finite rows; returns ``self``."""
        data = _as_numpy(features)
        if data.ndim != 2 or data.shape[0] < 2:
            raise ValueError(f"expected features of shape (N, C) with N >= 2, got {data.shape}")
        if not np.isfinite(data).all():
            raise ValueError("features contain NaN or infinity")
        mean = data.mean(axis=0)
        centred = data - mean
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        components = np.zeros((data.shape[1], 3))
        count = min(3, vt.shape[0])
        components[:, :count] = vt[:count].T
        signs = np.sign(components[np.abs(components).argmax(axis=0), np.arange(3)])
        components *= np.where(signs == 0, 1.0, signs)
        projected = centred @ components
        low = np.percentile(projected, self.clip_percentile, axis=0)
        high = np.percentile(projected, 100.0 - self.clip_percentile, axis=0)
        self.mean, self.components = mean, components
        self.low, self.high = low, np.maximum(high, low + 1e-12)
        return self

    def project(self, features: ArrayLike) -> np.ndarray:
        """``(N, C)`` features -> ``(N, 3)`` principal coordinates."""
        if not self.fitted:
            raise RuntimeError("PCAProjector.fit must be called before projecting")
        data = _as_numpy(features)
        if data.ndim != 2 or data.shape[1] != self.mean.shape[0]:
            raise ValueError(f"expected (N, {self.mean.shape[0]}) features, got {data.shape}")
        return (data - self.mean) @ self.components

    def to_rgb(self, features: ArrayLike) -> np.ndarray:
        """Dense ``(C, h, w)`` features -> ``(h, w, 3)`` uint8 RGB image."""
        data = _as_numpy(features)
        if data.ndim != 3:
            raise ValueError(f"expected dense features of shape (C, h, w), got {data.shape}")
        channels, height, width = data.shape
        coords = self.project(data.reshape(channels, -1).T)
        scaled = (coords - self.low) / (self.high - self.low)
        return np.round(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8).reshape(height, width, 3)
