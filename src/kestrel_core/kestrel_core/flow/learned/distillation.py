"""Distillation from a classical teacher: pseudo-labels computed on the same unlabeled pairs.

The teacher is Kestrel's classical :func:`~kestrel_core.flow.coarse_to_fine.coarse_to_fine_flow`,
run once per training pair in both directions without occlusion filling. Only the pixels
whose two flows pass the forward-backward check
(:func:`~kestrel_core.flow.consistency.forward_backward_occlusion`) keep a pseudo-label; the
others are NaN and take no part in the loss. No human label is involved anywhere: the
teacher sees the same recordings as the network.

The student is held to the teacher by a robust endpoint loss on every output level
(:func:`teacher_endpoint_loss`).
"""

from __future__ import annotations

import numpy as np
import torch

from kestrel_core.flow.coarse_to_fine import CoarseToFineConfig, coarse_to_fine_flow
from kestrel_core.flow.consistency import forward_backward_occlusion
from kestrel_core.flow.learned.synthetic import multiscale_endpoint_loss

__all__ = ["TEACHER_CONFIG", "consistent_teacher_flows", "teacher_endpoint_loss"]

#: The teacher: coarse-to-fine with its defaults, but unfilled (filled pixels are guesses).
TEACHER_CONFIG = CoarseToFineConfig(fill_occlusions=False)


def consistent_teacher_flows(first: np.ndarray, second: np.ndarray,
                             config: CoarseToFineConfig = TEACHER_CONFIG,
                             device: str | torch.device = "cpu") -> np.ndarray:
    """Teacher flows of a pair in both directions, NaN where the forward-backward check fails.

    Args:
        first, second: ``(H, W)`` or ``(H, W, 3)`` images of one size (see
            :func:`coarse_to_fine_flow`).
        config: the teacher's settings; its ``consistency_relative`` and
            ``consistency_absolute`` are the tolerances of the check.

    Returns:
        ``(2, 2, H, W)`` float32: ``[0]`` the flow first -> second, ``[1]`` second -> first,
        each ``(u, v)`` in pixels, both components NaN at the pixels that fail the check (or
        whose target leaves the image).
    """
    forward = coarse_to_fine_flow(first, second, config, device).float()[None]
    backward = coarse_to_fine_flow(second, first, config, device).float()[None]
    flows = torch.cat([forward, backward])                                  # (2, 2, H, W)
    rejected = forward_backward_occlusion(flows, torch.cat([backward, forward]),
                                          config.consistency_relative, config.consistency_absolute)
    return flows.masked_fill(rejected, float("nan")).cpu().numpy()


def teacher_endpoint_loss(flows: list[torch.Tensor], teacher: torch.Tensor,
                          power: float = 1.0) -> torch.Tensor:
    """Robust multi-level endpoint loss of the network's flows against a masked teacher flow.

    Args:
        flows: the network's outputs, coarse to fine (see ``PyramidFlowNet.forward``), each
            ``(B, 2, h, w)`` in pixels of its level, the last at the input size.
        teacher: ``(B, 2, H, W)`` pseudo-label flow in input pixels, NaN where it is not
            trusted; a coarser level pixel is scored when over half of the input pixels under
            it are trusted, against their mean flow (the check leaves scattered holes, so
            few coarse pixels are trusted throughout).
        power: exponent ``q`` of the generalized Charbonnier penalty ``(|e| + 0.01)^q`` on the
            endpoint error ``|e|``; below 1 it lowers the pull of the teacher's remaining
            outliers (1 is the plain endpoint error).

    Returns:
        0-dim tensor: the level losses averaged with equal weight (0 when nothing is trusted).
    """
    if teacher.ndim != 4 or teacher.shape[1] != 2 or teacher.shape != flows[-1].shape:
        raise ValueError(f"teacher must be (B, 2, H, W) like the finest flow "
                         f"{tuple(flows[-1].shape)}, got {tuple(teacher.shape)}")
    trusted = torch.isfinite(teacher).all(dim=1, keepdim=True)
    return multiscale_endpoint_loss(flows, torch.nan_to_num(teacher, nan=0.0), trusted, power,
                                    min_valid_share=0.5)
