"""Filling unreliable flow (occlusions, failed matches) from reliable neighbours, guided by
the image so that values do not leak across its edges.

Two steps, both vectorised over pixels:

1. **push-pull** (normalised convolution on a pyramid): reliable values are averaged down
   the pyramid until every coarse pixel has some, and the holes are filled from the
   coarsest level up. Any hole, however large, gets a smooth first guess.
2. **edge-aware diffusion**: Jacobi iterations of the weighted mean of the 4 neighbours,
   with weights ``exp(-|I(p) - I(q)| / sigma)`` from the guide image, on the unreliable
   pixels only (the reliable ones stay fixed). The fixed point solves the discrete
   weighted Laplace equation with the reliable pixels as boundary values: with a
   uniform guide, a linear field is filled exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["push_pull_fill", "edge_aware_fill", "NeighbourWeights", "neighbour_weights"]


def push_pull_fill(values: torch.Tensor, reliable: torch.Tensor) -> torch.Tensor:
    """Fill ``(1, C, h, w)`` ``values`` where the ``(1, 1, h, w)`` bool ``reliable`` is
    False by normalised averaging over a pyramid; reliable values are kept as they are.
    Returns ``values`` unchanged if no pixel is reliable."""
    weight = reliable.to(values.dtype)
    if not bool(weight.any()):
        return values
    return torch.where(reliable, values, _push_pull(values * weight, weight))


def _push_pull(weighted: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Normalised values ``weighted / weight`` with holes filled from coarser levels."""
    height, width = weight.shape[-2:]
    filled = weighted / weight.clamp_min(1e-12)
    if min(height, width) <= 1 or bool((weight > 0).all()):
        return filled
    pad = (0, width % 2, 0, height % 2)
    coarse = _push_pull(F.avg_pool2d(F.pad(weighted, pad, mode="replicate"), 2),
                        F.avg_pool2d(F.pad(weight, pad, mode="replicate"), 2))
    upsampled = F.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False)
    upsampled = upsampled[..., :height, :width]
    return torch.where(weight > 0, filled, upsampled)


def edge_aware_fill(
    values: torch.Tensor, reliable: torch.Tensor, guide: torch.Tensor, sigma: float, iterations: int
) -> torch.Tensor:
    """Fill unreliable ``values`` by edge-aware diffusion from the reliable ones.

    Args:
        values: ``(1, C, h, w)`` field to fill (e.g. a flow, ``C = 2``).
        reliable: ``(1, 1, h, w)`` bool, True where ``values`` is kept.
        guide: ``(1, G, h, w)`` image whose edges stop the diffusion (values in ``[0, 1]``).
        sigma: intensity difference (summed over guide channels) at which a neighbour's
            weight drops to ``1/e`` (> 0).
        iterations: Jacobi iterations after the push-pull start (>= 0).

    Returns:
        ``(1, C, h, w)`` filled field, equal to ``values`` where ``reliable``.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    filled = push_pull_fill(values, reliable)
    if iterations <= 0 or bool(reliable.all()):
        return filled
    weights = neighbour_weights(guide, sigma)
    for _ in range(iterations):
        filled = torch.where(reliable, values, weights.weighted_sum(filled) / weights.total)
    return filled


class NeighbourWeights:
    """Edge-aware weights ``exp(-|I(p) - I(q)| / sigma)`` of the links between each pixel
    ``p`` of a ``(1, G, h, w)`` guide and its 4 neighbours ``q`` (0 across the image
    border), with their sum per pixel."""

    def __init__(self, guide: torch.Tensor, sigma: float) -> None:
        right = torch.exp(-(guide[..., :, 1:] - guide[..., :, :-1]).abs().sum(1, keepdim=True) / sigma)
        down = torch.exp(-(guide[..., 1:, :] - guide[..., :-1, :]).abs().sum(1, keepdim=True) / sigma)
        self.left = F.pad(right, (1, 0, 0, 0))
        self.right = F.pad(right, (0, 1, 0, 0))
        self.up = F.pad(down, (0, 0, 1, 0))
        self.down = F.pad(down, (0, 0, 0, 1))
        self.total = (self.left + self.right + self.up + self.down).clamp_min(1e-12)  # (1, 1, h, w)

    def weighted_sum(self, values: torch.Tensor) -> torch.Tensor:
        """``sum_q w_pq values(q)`` for a ``(1, C, h, w)`` field (border replicated, where
        the weight is 0 anyway)."""
        padded = F.pad(values, (1, 1, 1, 1), mode="replicate")
        return (self.left * padded[..., 1:-1, :-2] + self.right * padded[..., 1:-1, 2:]
                + self.up * padded[..., :-2, 1:-1] + self.down * padded[..., 2:, 1:-1])


def neighbour_weights(guide: torch.Tensor, sigma: float) -> NeighbourWeights:
    """:class:`NeighbourWeights` of ``guide`` (``(1, G, h, w)``, values in ``[0, 1]``)."""
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    return NeighbourWeights(guide, sigma)
