"""Coarse-to-fine flow: local 2D block matching, smoothed Lucas-Kanade refinement, median
filtering, then a forward-backward check whose failures are filled from reliable
neighbours.

On each pyramid level, coarsest first, the flow of the coarser level (zero at the top)
is upsampled and

1. corrected by :func:`~kestrel_core.flow.local_search.local_search`: a window-SAD cost
   over integer offsets in ``[-r, r]^2`` around it and over the flows of the pixels a
   few steps away in the 8 compass directions, winner takes all. It is a genuine 2D
   search (no direction is favoured); the offsets recover from errors of the coarser
   level up to ``r`` pixels of this level, the propagated flows repair the halo a
   moving object leaves on its background at coarse levels, which plain Lucas-Kanade
   cannot;
2. refined to sub-pixel precision by warping Lucas-Kanade steps with an edge-aware
   smoothness term (:func:`~kestrel_core.flow.variational.smooth_refine_level`), which
   carries the motion into untextured areas;
3. cleaned by a ``median_size`` median filter (isolated wrong matches vanish, motion
   edges stay).

With ``fill_occlusions`` the backward flow is computed too; pixels that fail the
forward-backward check (occluded, or matched inconsistently) get their flow from
reliable neighbours by :func:`~kestrel_core.flow.filling.edge_aware_fill`, guided by the
first image. The only Python loops run over levels, candidate chunks, iterations and
fill steps, so the same code runs on the CPU and on CUDA.

Cost: on the CPU about 30 times Lucas-Kanade's, seconds per 640x480 pair (the search
tries about 50 candidates per pixel on every level, and the flow is computed in both
directions); ``docs/benchmarks.md`` has the figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from kestrel_core.device import resolve_device
from kestrel_core.flow.consistency import forward_backward_occlusion
from kestrel_core.flow.filling import edge_aware_fill
from kestrel_core.flow.filters import gaussian_pyramid, median_filter, upsample_flow
from kestrel_core.flow.local_search import local_search, matching_features
from kestrel_core.flow.lucas_kanade import LKConfig, refine_level
from kestrel_core.flow.variational import smooth_refine_level
from kestrel_core.imaging import gray_pair

__all__ = ["CoarseToFineConfig", "coarse_to_fine_flow"]


@dataclass(frozen=True)
class CoarseToFineConfig:
    """Parameters of :func:`coarse_to_fine_flow`.

    The defaults were chosen on the Motorcycle pair used as flow (left to right: EPE about
    2.3 px against 2.6 for OpenCV DIS-medium and 4.7 for Kestrel's default Lucas-Kanade)
    and checked on known 2D translations and affine warps of real images (tests).

    Attributes:
        levels: pyramid levels including full resolution (>= 1); fewer when the image is
            small (the coarsest side stays >= 8 pixels).
        search_radius: radius ``r`` (>= 1) of the 2D search on each level; it corrects
            errors of up to ``r * 2**level`` full-resolution pixels.
        coarsest_search_radius: radius on the coarsest level, where the flow starts at
            zero; with 6 levels, 4 reaches motions of about ``4 * 32 = 128`` pixels.
        finest_search_level: the finest level that is searched (0 = full resolution);
            the levels below it are only refined by Lucas-Kanade, which saves most of
            the cost of the search at some loss of accuracy at motion boundaries.
        match_window: odd side of the window the matching cost is summed over.
        propagation: distances (pixels of each level, >= 1) of the neighbours in the 8
            compass directions whose flows are also tried by the search; they repair
            the halo of a neighbouring motion that coarse levels leave around objects.
        lk: Lucas-Kanade settings of the refinement (window, gradient, interpolation,
            iterations per coarse level and on the finest); its ``levels`` is not used.
        smoothness: weight ``lambda`` (>= 0) of the edge-aware smoothness term of the
            refinement (:mod:`~kestrel_core.flow.variational`), in units of the
            structure tensor; 0 refines with plain Lucas-Kanade instead.
        edge_sigma: grey-level difference (in ``[0, 1]``) at which the smoothness weight
            between neighbours drops to ``1/e`` (> 0).
        jacobi_steps: Jacobi iterations of the smoothed refinement per warp (>= 1).
        median_size: odd side of the median filter applied to the flow on each level
            (1 turns it off).
        fill_occlusions: compute the backward flow, and replace the flow of pixels failing
            the forward-backward check by edge-aware filling. Doubles the cost.
        consistency_relative, consistency_absolute: a pixel fails the check when
            ``|f + b'|^2 > relative (|f|^2 + |b'|^2) + absolute`` (pixels squared), with
            ``b'`` the backward flow at ``x + f(x)``, or when ``x + f(x)`` leaves the image.
        fill_sigma: grey-level difference at which the filling weight between neighbours
            drops to ``1/e`` (> 0).
        fill_iterations: edge-aware diffusion steps of the filling (>= 0), after a
            push-pull first guess.
    """

    levels: int = 6
    search_radius: int = 2
    coarsest_search_radius: int = 4
    finest_search_level: int = 0
    match_window: int = 9
    propagation: tuple[int, ...] = (4, 12, 24)
    lk: LKConfig = field(default_factory=lambda: LKConfig(window=9, iterations=3, finest_iterations=2))
    smoothness: float = 0.03
    edge_sigma: float = 0.05
    jacobi_steps: int = 3
    median_size: int = 3
    fill_occlusions: bool = True
    consistency_relative: float = 0.01
    consistency_absolute: float = 0.5
    fill_sigma: float = 0.03
    fill_iterations: int = 60

    def __post_init__(self) -> None:
        for name in ("levels", "search_radius", "coarsest_search_radius", "finest_search_level",
                     "match_window", "jacobi_steps", "median_size", "fill_iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"CoarseToFineConfig.{name} must be an int, got {value!r}")
        for name in ("levels", "search_radius", "coarsest_search_radius", "jacobi_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"CoarseToFineConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("finest_search_level", "fill_iterations"):
            if getattr(self, name) < 0:
                raise ValueError(f"CoarseToFineConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("match_window", "median_size"):
            if getattr(self, name) < 1 or getattr(self, name) % 2 == 0:
                raise ValueError(f"CoarseToFineConfig.{name} must be odd and >= 1, got {getattr(self, name)}")
        if not isinstance(self.propagation, tuple) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in self.propagation
        ):
            raise ValueError(f"CoarseToFineConfig.propagation must be a tuple of ints >= 1, got {self.propagation!r}")
        if not isinstance(self.lk, LKConfig):
            raise ValueError(f"CoarseToFineConfig.lk must be an LKConfig, got {type(self.lk).__name__}")
        for name, minimum in (("smoothness", 0.0), ("edge_sigma", None), ("consistency_relative", 0.0),
                              ("consistency_absolute", 0.0), ("fill_sigma", None)):
            value = getattr(self, name)
            valid = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            if not valid or (value < minimum if minimum is not None else value <= 0):
                bound = f">= {minimum}" if minimum is not None else "> 0"
                raise ValueError(f"CoarseToFineConfig.{name} must be a finite number {bound}, got {value!r}")


def coarse_to_fine_flow(
    first: object,
    second: object,
    config: CoarseToFineConfig = CoarseToFineConfig(),
    device: str | torch.device = "auto",
) -> torch.Tensor:
    """Dense optical flow from ``first`` to ``second`` (see the module docstring).

    Args:
        first, second: ``(H, W)`` grey, ``(H, W, 1)`` or ``(H, W, 3)`` RGB images, numpy
            arrays or torch tensors, uint8, uint16 or floating point, of the same size.
        config: the :class:`CoarseToFineConfig`.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns:
        ``(2, H, W)`` flow ``(u, v)`` in pixels on ``device`` with
        ``second(x + u, y + v) ~ first(x, y)``; float64 when an input is float64, else
        float32.

    Raises:
        ValueError: bad images, config or device.
    """
    if not isinstance(config, CoarseToFineConfig):
        raise ValueError(f"config must be a CoarseToFineConfig, got {type(config).__name__}")
    target = resolve_device(device)
    with torch.inference_mode():
        img1, img2 = gray_pair(first, second, device=target)
        pyr1 = gaussian_pyramid(img1[None, None], config.levels)
        pyr2 = gaussian_pyramid(img2[None, None], len(pyr1))
        features1 = _feature_pyramid(pyr1, config)
        features2 = _feature_pyramid(pyr2, config)
        forward = _one_direction(pyr1, pyr2, features1, features2, config)
        if not config.fill_occlusions:
            return forward[0]
        backward = _one_direction(pyr2, pyr1, features2, features1, config)
        occluded = forward_backward_occlusion(forward, backward, config.consistency_relative,
                                              config.consistency_absolute)
        filled = edge_aware_fill(forward, ~occluded, pyr1[0], config.fill_sigma, config.fill_iterations)
        return filled[0]


def _feature_pyramid(pyramid: list[torch.Tensor], config: CoarseToFineConfig) -> list[torch.Tensor | None]:
    """Matching features of each searched level (None for the levels not searched)."""
    return [matching_features(image, config.match_window) if level >= config.finest_search_level else None
            for level, image in enumerate(pyramid)]


def _one_direction(pyr1: list[torch.Tensor], pyr2: list[torch.Tensor], features1: list[torch.Tensor | None],
                   features2: list[torch.Tensor | None], config: CoarseToFineConfig) -> torch.Tensor:
    """``(1, 2, H, W)`` flow from the image of ``pyr1`` to that of ``pyr2`` (grey
    pyramids, finest first, with the matching features of their searched levels)."""
    coarsest = len(pyr1) - 1
    flow = None
    for level in range(coarsest, -1, -1):
        i1, i2 = pyr1[level], pyr2[level]
        if flow is None:
            flow = i1.new_zeros(1, 2, *i1.shape[-2:])
        else:
            flow = upsample_flow(flow, i1.shape[-2:])
        if level >= config.finest_search_level:
            radius = config.coarsest_search_radius if level == coarsest else config.search_radius
            flow, _ = local_search(features1[level], features2[level], flow, radius, config.match_window,
                                   config.propagation)
        if config.smoothness > 0:
            flow = smooth_refine_level(i1, i2, flow, config.lk, config.lk.iterations_at(level),
                                       config.smoothness, config.edge_sigma, config.jacobi_steps)
        else:
            flow = refine_level(i1, i2, flow, config.lk, config.lk.iterations_at(level))
        if config.median_size > 1:
            flow = median_filter(flow, config.median_size)
    return flow
