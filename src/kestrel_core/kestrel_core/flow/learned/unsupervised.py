"""Unsupervised losses for flow: photometric with occlusion masks, smoothness, crop consistency.

With ``f`` the flow frame 1 -> 2 and ``b`` the flow 2 -> 1 of one pair, the loss is

- **photometric**: ``alpha (1 - SSIM) / 2 + (1 - alpha) |.|`` between frame 1 and frame 2
  warped back by ``f`` (and symmetrically for ``b``), averaged over the pixels that the
  forward-backward check finds visible in both frames;
- **smoothness**: edge-aware first-order variation of both flows, weighted by
  ``exp(-gamma |grad I|)`` so that motion boundaries may follow image edges;
- **crop consistency** (ARFlow-style self-supervision across augmentations): the flow the
  network predicts on a crop should equal the crop of its (detached) full-frame flow, on
  the pixels that are visible.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kestrel_core.flow.consistency import forward_backward_occlusion
from kestrel_core.geometry.warp import backward_warp
from kestrel_core.losses.photometric import photometric_loss
from kestrel_core.losses.smoothness import edge_aware_smoothness

__all__ = ["UnsupervisedFlowLossConfig", "unsupervised_flow_loss", "crop_consistency_loss"]


@dataclass(frozen=True)
class UnsupervisedFlowLossConfig:
    """Weights of the unsupervised flow loss.

    Attributes:
        alpha: SSIM share of the photometric error, in [0, 1].
        smoothness_weight: weight of the edge-aware smoothness term (>= 0).
        edge_gamma: edge sensitivity of the smoothness weights (> 0), for images in [0, 1].
        occlusion_alpha1, occlusion_alpha2: forward-backward check tolerances
            (see :func:`kestrel_core.flow.consistency.forward_backward_occlusion`).
        min_visible: when the check keeps less than this share of a direction's pixels, its
            occlusion mask is ignored for that batch: early in training the two flows do
            not agree anywhere yet, and masking everything would remove the photometric
            term (the loss would fall to zero with no gradient to recover from).
    """

    alpha: float = 0.85
    smoothness_weight: float = 0.1
    edge_gamma: float = 10.0
    occlusion_alpha1: float = 0.01
    occlusion_alpha2: float = 0.5
    min_visible: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if not 0.0 <= self.min_visible <= 1.0:
            raise ValueError(f"min_visible must be in [0, 1], got {self.min_visible}")
        if self.smoothness_weight < 0 or not self.edge_gamma > 0:
            raise ValueError("smoothness_weight must be >= 0 and edge_gamma > 0")


def unsupervised_flow_loss(first: torch.Tensor, second: torch.Tensor, forward: torch.Tensor,
                           backward: torch.Tensor, config: UnsupervisedFlowLossConfig,
                           mask_occlusions: bool = True) -> dict[str, torch.Tensor]:
    """Photometric plus smoothness loss of a forward and a backward flow.

    Args:
        first, second: ``(B, 3, H, W)`` frames in [0, 1].
        forward, backward: ``(B, 2, H, W)`` flows first -> second and second -> first.
        mask_occlusions: exclude occluded pixels from the photometric term (training usually
            starts without the masks, while the flows are still meaningless).

    Returns:
        ``total``, ``photometric``, ``smoothness`` (0-dim tensors) and ``visible``, the share
        of pixels the photometric term used.
    """
    terms = []
    visible_shares = []
    for target, source, flow, reverse in ((first, second, forward, backward),
                                          (second, first, backward, forward)):
        warped, inside = backward_warp(source, flow, padding="border")
        visible = inside
        if mask_occlusions:
            checked = visible & ~forward_backward_occlusion(
                flow, reverse, config.occlusion_alpha1, config.occlusion_alpha2)
            if checked.float().mean() >= config.min_visible:
                visible = checked
        terms.append(photometric_loss(target, warped, config.alpha, visible))
        visible_shares.append(visible.float().mean())
    photometric = 0.5 * (terms[0] + terms[1])
    smoothness = 0.5 * (edge_aware_smoothness(forward, first, config.edge_gamma)
                        + edge_aware_smoothness(backward, second, config.edge_gamma))
    total = photometric + config.smoothness_weight * smoothness
    return {"total": total, "photometric": photometric, "smoothness": smoothness,
            "visible": 0.5 * (visible_shares[0] + visible_shares[1]).detach()}


def crop_consistency_loss(crop_flow: torch.Tensor, teacher_flow: torch.Tensor,
                          visible: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance of a crop's flow to the (detached) full-frame flow cropped alike.

    Args:
        crop_flow: ``(B, 2, h, w)`` flow predicted on the cropped pair.
        teacher_flow: ``(B, 2, h, w)`` crop of the full-frame flow (gradients are stopped).
        visible: ``(B, 1, h, w)`` bool, the pixels where the teacher is trusted.
    """
    if crop_flow.shape != teacher_flow.shape or visible.shape[-2:] != crop_flow.shape[-2:]:
        raise ValueError(f"shapes differ: {tuple(crop_flow.shape)}, {tuple(teacher_flow.shape)}, "
                         f"{tuple(visible.shape)}")
    weights = visible.to(crop_flow.dtype)
    error = (crop_flow - teacher_flow.detach()).abs().sum(dim=1, keepdim=True)
    return (error * weights).sum() / weights.sum().clamp_min(1.0)
