"""MaskCut (Wang et al., CutLER, CVPR 2023): several objects by repeated normalized cuts.

Each round runs :func:`~kestrel_core.discovery.ncut.normalized_cut` on the tokens that no
earlier object took, keeps the foreground's largest connected component as the next
object, and removes its tokens from the graph. It stops after ``max_objects`` objects, or
earlier when there is no cut left or the new mask is smaller than ``min_tokens``.

Centring. The keys of a DINOv2 ViT share a large common component: on Motorcycle at 480 px
the 1st and 90th percentiles of the raw cosines over all key pairs are 0.74 and 0.96, so
nearly every affinity passes any usual ``tau`` and there is nothing to cut. Subtracting the
image's mean key first (``center_keys``, default on) leaves the part that differs between
tokens; the same percentiles of the centred cosines are -0.68 and 0.68, and ``tau``
separates objects again. Identical keys
(a constant image) become zero vectors whose cosines are all 0, so no affinity is above
``tau`` and there is no cut.

Each mask gets a :class:`MaskScore`:

* ``cut_value`` ``lambda_2`` and ``eigengap`` ``lambda_3 - lambda_2`` of its cut;
* ``area``: the share of the token grid it covers;
* ``contrast``: ``1 - cos(mean key inside, mean key of all tokens outside)``;
* ``score = clip(contrast, 0, 1) * eigengap / (eigengap + lambda_2)``: high when the
  object's keys differ from the rest and the cut is unambiguous (small ``lambda_2``
  relative to the gap to the next eigenvalue). It lies in ``[0, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from kestrel_core.discovery.ncut import NCutConfig, normalized_cut

__all__ = ["MaskCutConfig", "MaskScore", "MaskCutResult", "maskcut"]


@dataclass(frozen=True)
class MaskCutConfig:
    """Settings of :func:`maskcut`.

    Attributes:
        max_objects: most objects per image (>= 1).
        tau: affinity threshold (see :class:`~kestrel_core.discovery.ncut.NCutConfig`).
        eps: weight of the affinities below ``tau``.
        split: ``"mean"`` or ``"zero"`` bipartition.
        max_cut_value: largest accepted relaxed cut value ``lambda_2``.
        min_tokens: smallest accepted mask, in tokens.
        center_keys: subtract the image's mean key before the cosine (see the module
            docstring).
    """

    max_objects: int = 3
    tau: float = 0.15
    eps: float = 1e-5
    split: str = "mean"
    max_cut_value: float = 0.95
    min_tokens: int = 4
    center_keys: bool = True

    def __post_init__(self) -> None:
        if self.max_objects < 1:
            raise ValueError(f"max_objects must be at least 1, got {self.max_objects}")
        if self.min_tokens < 1:
            raise ValueError(f"min_tokens must be at least 1, got {self.min_tokens}")
        self.ncut  # validates tau, eps, split and max_cut_value

    @property
    def ncut(self) -> NCutConfig:
        """The settings of each single cut."""
        return NCutConfig(self.tau, self.eps, self.split, self.max_cut_value)


@dataclass(frozen=True)
class MaskScore:
    """Quality measures of one discovered mask (see the module docstring)."""

    score: float
    cut_value: float
    eigengap: float
    area: float
    contrast: float


@dataclass(frozen=True)
class MaskCutResult:
    """Objects found by :func:`maskcut`, in discovery order.

    Attributes:
        masks: ``(K, h, w)`` bool token masks, disjoint; ``K = 0`` when nothing was found.
        scores: ``K`` :class:`MaskScore`.
        descriptors: ``(K, D)`` float32 mean key of each mask (for tracking), CPU.
    """

    masks: np.ndarray
    scores: tuple[MaskScore, ...] = field(default_factory=tuple)
    descriptors: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 0))

    @property
    def count(self) -> int:
        return int(self.masks.shape[0])

    def score_array(self) -> np.ndarray:
        """``(K,)`` float32 combined scores."""
        return np.array([s.score for s in self.scores], np.float32)


def _contrast(unit_keys: torch.Tensor, inside: torch.Tensor) -> tuple[float, torch.Tensor]:
    """``1 - cos`` of the mean unit key inside and outside a mask, and the inside mean."""
    inner = unit_keys[inside].mean(dim=0)
    if bool(inside.all()):
        return 0.0, inner
    outer = unit_keys[~inside].mean(dim=0)
    return float(1.0 - F.cosine_similarity(inner, outer, dim=0)), inner


def maskcut(keys: torch.Tensor, grid: tuple[int, int], config: MaskCutConfig = MaskCutConfig()) -> MaskCutResult:
    """Discover up to ``config.max_objects`` objects on a token grid.

    Args:
        keys: ``(N, D)`` patch keys of one image, ``N = h * w`` row-major, any device.
        grid: ``(h, w)``.
        config: see :class:`MaskCutConfig`.

    Returns:
        A :class:`MaskCutResult` (``count == 0`` when there is no cut, e.g. identical keys).
    """
    h, w = grid
    if keys.ndim != 2 or keys.shape[0] != h * w:
        raise ValueError(f"keys must be (h*w, D) = ({h * w}, D), got {tuple(keys.shape)}")
    if not bool(torch.isfinite(keys).all()):
        raise ValueError("keys contain NaN or inf")
    keys = keys.float()
    if config.center_keys:
        keys = keys - keys.mean(dim=0, keepdim=True)
    unit_keys = F.normalize(keys, dim=1)
    active = np.ones((h, w), bool)
    masks, scores, descriptors = [], [], []
    for _ in range(config.max_objects):
        cut = normalized_cut(keys, grid, config.ncut, active)
        if cut is None or int(cut.mask.sum()) < config.min_tokens:
            break
        inside = torch.as_tensor(cut.mask.ravel(), device=keys.device)
        contrast, descriptor = _contrast(unit_keys, inside)
        confidence = cut.eigengap / max(cut.eigengap + cut.cut_value, 1e-12)
        scores.append(MaskScore(float(np.clip(contrast, 0.0, 1.0) * confidence), cut.cut_value,
                                cut.eigengap, float(cut.mask.mean()), contrast))
        masks.append(cut.mask)
        descriptors.append(descriptor.cpu())
        active &= ~cut.mask
    if not masks:
        return MaskCutResult(np.zeros((0, h, w), bool), (), torch.zeros(0, keys.shape[1]))
    return MaskCutResult(np.stack(masks), tuple(scores), torch.stack(descriptors))
