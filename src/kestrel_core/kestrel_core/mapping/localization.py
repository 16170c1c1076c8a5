"""MapNet-style localization: correlate rotated observations with the map around a prior.

The observation's egocentric grid becomes a signal (+1 hit, ``-free_weight`` seen free, 0
unknown), is resampled at ``rotation_bins`` headings around the prior heading and
cross-correlated (one ``conv2d``) with the map's occupancy signal (``2 P(occ) - 1``) in a
square window of translations around the prior position. The normalised scores over the
temperature are a log-likelihood; optionally a Gaussian motion prior around the prior pose
is added (MapNet's softmax posterior allows it), so where the correlation is flat or biased
the estimate keeps to the odometry. A softmax over the sum is the pose distribution; the
estimate is its mode, refined to sub-cell and sub-bin accuracy by a parabola through the
neighbouring log-posterior values, with the distribution's covariance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from kestrel_core.mapping.allocentric import map_crop, rotated_egos
from kestrel_core.mapping.egocentric import FREE, HITS


@dataclass(frozen=True)
class LocalizationConfig:
    """Search space and scoring.

    Attributes:
        search_radius_cells: W; translations within +-W cells of the prior are scored.
        rotation_bins: odd number of headings, centred on the prior heading.
        rotation_step: radians between headings.
        temperature: softmax temperature on the normalised score (smaller is peakier).
        free_weight: weight of seen-free cells in the observation signal.
        min_score: the best normalised score needed to accept the estimate (1 is a perfect
            match of every observed cell with a saturated map).
    """

    search_radius_cells: int = 6
    rotation_bins: int = 9
    rotation_step: float = float(np.radians(1.0))
    temperature: float = 0.02
    free_weight: float = 0.5
    min_score: float = 0.2

    def __post_init__(self) -> None:
        if self.search_radius_cells < 1:
            raise ValueError(f"search_radius_cells must be >= 1, got {self.search_radius_cells}")
        if self.rotation_bins < 1 or self.rotation_bins % 2 == 0:
            raise ValueError(f"rotation_bins must be odd and >= 1, got {self.rotation_bins}")
        if not self.rotation_step > 0 or not self.temperature > 0:
            raise ValueError("rotation_step and temperature must be > 0")


@dataclass(frozen=True)
class PoseEstimate:
    """What ``localize`` found.

    Attributes:
        pose: (3,) ``(x, y, theta)`` refined mode, map frame.
        covariance: (3, 3) of the pose distribution (m^2, rad^2).
        score: normalised correlation at the mode.
        accepted: ``score >= min_score``; callers keep the prior otherwise.
        distribution: (A, 2W+1, 2W+1) probabilities over heading bins and (dy, dx) cells.
    """

    pose: np.ndarray
    covariance: np.ndarray
    score: float
    accepted: bool
    distribution: torch.Tensor


def observation_signal(ego: torch.Tensor, free_weight: float) -> torch.Tensor:
    """(S, S) signal of a (C, S, S) egocentric grid: 1 hit, -free_weight free, 0 unknown."""
    hit = (ego[HITS] > 0).to(ego.dtype)
    free = (ego[FREE] > 0).to(ego.dtype) * (1.0 - hit)
    return hit - free_weight * free


def _parabola_offset(before: float, peak: float, after: float) -> float:
    """Sub-bin offset in [-0.5, 0.5] of the vertex of the parabola through three scores."""
    curvature = before - 2.0 * peak + after
    if curvature >= 0:
        return 0.0
    return float(np.clip(0.5 * (before - after) / curvature, -0.5, 0.5))


def _log_prior(w: int, bins: int, resolution: float, rotation_step: float,
               sigma: np.ndarray | None, like: torch.Tensor) -> torch.Tensor | float:
    """(A, 2W+1, 2W+1) log density (up to a constant) of a Gaussian on the window's offsets
    ``(theta, dy, dx)`` from its centre with (3,) ``sigma = (x, y, theta)``; 0 without sigma."""
    if sigma is None:
        return 0.0
    sigma = np.asarray(sigma, np.float64)
    if sigma.shape != (3,) or not np.all(sigma > 0):
        raise ValueError(f"prior_sigma must be three positive values, got {sigma}")
    cells = torch.arange(-w, w + 1, dtype=like.dtype, device=like.device) * resolution
    turns = (torch.arange(bins, dtype=like.dtype, device=like.device) - bins // 2) * rotation_step
    return -0.5 * ((turns / sigma[2])[:, None, None] ** 2 + (cells / sigma[1])[None, :, None] ** 2
                   + (cells / sigma[0])[None, None, :] ** 2)


def localize(ego: torch.Tensor, reference: torch.Tensor, origin: tuple[float, float],
             resolution: float, prior: np.ndarray, config: LocalizationConfig,
             prior_sigma: np.ndarray | None = None) -> PoseEstimate:
    """Pose of an observation in a reference grid near a prior.

    Args:
        ego: (C, S, S) egocentric grid of the observation (channels as in ``egocentric``).
        reference: (H, W) signal in [-1, 1] (``MapMemory.occupancy_signal()`` or another
            observation's ``observation_signal``), same resolution.
        origin: (x0, y0) of the reference's cell (0, 0) corner.
        resolution: metres per cell.
        prior: (3,) ``(x, y, theta)`` prior pose in the reference frame.
        config: search settings.
        prior_sigma: (3,) standard deviations (m, m, rad) of a Gaussian motion prior centred on
            ``prior``; its log density is added to the scaled scores before the mode and the
            distribution are taken. None: a flat prior over the window.
    """
    w, bins = config.search_radius_cells, config.rotation_bins
    signal = observation_signal(ego, config.free_weight)
    radius = (signal.shape[-1] - 1) // 2
    steps = torch.arange(bins, dtype=signal.dtype, device=signal.device) - bins // 2
    angles = float(prior[2]) + steps * config.rotation_step
    kernels = rotated_egos(signal[None], angles)  # (A, 1, S, S)
    crop = map_crop(reference[None].to(signal.dtype), (float(prior[0]), float(prior[1])),
                    radius + w, origin, resolution)  # (1, S + 2W, S + 2W)
    norm = kernels.abs().sum(dim=(1, 2, 3)).clamp_min(1e-6)  # (A,)
    scores = F.conv2d(crop[None], kernels)[0] / norm[:, None, None]  # (A, 2W+1, 2W+1)
    log_posterior = scores / config.temperature + _log_prior(w, bins, resolution,
                                                             config.rotation_step, prior_sigma,
                                                             scores)
    probability = torch.softmax(log_posterior.flatten(), dim=0).reshape(scores.shape)

    flat = int(torch.argmax(log_posterior))
    a, row, col = np.unravel_index(flat, tuple(scores.shape))
    table = log_posterior.detach().double().cpu().numpy()
    best = float(scores[a, row, col])

    def refine(axis_values: np.ndarray, index: int) -> float:
        if 0 < index < len(axis_values) - 1:
            return index + _parabola_offset(*axis_values[index - 1:index + 2])
        return float(index)

    a_ref = refine(table[:, row, col], a)
    row_ref = refine(table[a, :, col], row)
    col_ref = refine(table[a, row, :], col)
    pose = np.array([float(prior[0]) + (col_ref - w) * resolution,
                     float(prior[1]) + (row_ref - w) * resolution,
                     float(prior[2]) + (a_ref - bins // 2) * config.rotation_step])

    p = probability.detach().double().cpu().numpy()
    offsets = np.arange(-w, w + 1) * resolution
    theta_offsets = (np.arange(bins) - bins // 2) * config.rotation_step
    grids = np.stack(np.meshgrid(theta_offsets, offsets, offsets, indexing="ij"))  # (3, A, U, V)
    samples = grids[[2, 1, 0]].reshape(3, -1)  # (x, y, theta) offsets
    weights = p.reshape(-1)
    mean = samples @ weights
    centred = samples - mean[:, None]
    covariance = (centred * weights) @ centred.T
    covariance += np.diag([resolution ** 2 / 12.0, resolution ** 2 / 12.0,
                           config.rotation_step ** 2 / 12.0])
    return PoseEstimate(pose, covariance, best, best >= config.min_score, probability)
