"""DINO: self-distillation without labels (Caron et al., ICCV 2021).

A student (backbone + projection head) learns to match, from every crop of an image, the
sharpened and centred output distribution of a teacher that sees only the global crops. The
teacher is an exponential moving average of the student; centring (subtracting a running mean
of the teacher's outputs) and sharpening (a low teacher temperature) together keep the teacher
from collapsing to one constant output or to the uniform distribution.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from kestrel_core.features.augment import MultiCropConfig, multi_crop
from kestrel_core.features.objectives.common import embed, ema_update, mean_all, mlp

DinoBatch = tuple[list[torch.Tensor], list[torch.Tensor]]


@dataclass(frozen=True)
class DinoConfig:
    """``out_dim`` prototypes behind a ``bottleneck_dim`` bottleneck; temperatures for the
    student and the (sharper) teacher; momenta of the teacher EMA and of the centre."""

    out_dim: int = 1024
    hidden_dim: int = 512
    bottleneck_dim: int = 128
    student_temp: float = 0.1
    teacher_temp: float = 0.04
    teacher_momentum: float = 0.996
    center_momentum: float = 0.9
    crops: MultiCropConfig = field(default_factory=MultiCropConfig)

    def __post_init__(self) -> None:
        if self.student_temp <= 0 or self.teacher_temp <= 0:
            raise ValueError("DINO temperatures must be positive")
        for name in ("teacher_momentum", "center_momentum"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")


class DinoHead(nn.Module):
    """3-layer MLP to an L2-normalized bottleneck, then a weight-normalized linear layer to
    the prototypes whose norms are fixed to 1: ``(B, in_dim) -> (B, out_dim)`` logits."""

    def __init__(self, in_dim: int, config: DinoConfig) -> None:
        super().__init__()
        self.mlp = mlp(in_dim, config.hidden_dim, config.bottleneck_dim, layers=3)
        self.last_layer = weight_norm(nn.Linear(config.bottleneck_dim, config.out_dim,
                                                bias=False))
        magnitude = self.last_layer.parametrizations.weight.original0
        with torch.no_grad():
            magnitude.fill_(1.0)
        magnitude.requires_grad_(False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.last_layer(F.normalize(self.mlp(features), dim=-1))


def teacher_probabilities(teacher_logits: torch.Tensor, center: torch.Tensor,
                          temperature: float) -> torch.Tensor:
    """Centred, sharpened teacher targets: ``softmax((logits - center) / T)``, ``(B, K)``."""
    return F.softmax((teacher_logits - center) / temperature, dim=-1)


def dino_loss(student_logits: list[torch.Tensor], teacher_logits: list[torch.Tensor],
              center: torch.Tensor, student_temp: float, teacher_temp: float) -> torch.Tensor:
    """DINO cross-entropy between every student crop and every teacher (global) crop, except
    a crop with itself.

    Args:
        student_logits: per crop ``(B, K)``; the first ``len(teacher_logits)`` are the global
            crops, in the teacher's order.
        teacher_logits: per global crop ``(B, K)`` (no gradient flows into them).
        center: ``(1, K)`` running mean of the teacher logits.
        student_temp, teacher_temp: softmax temperatures.

    Returns:
        Scalar mean of ``-sum_k p_teacher log p_student`` over the crop pairs and the batch.
    """
    if len(student_logits) < len(teacher_logits) or not teacher_logits:
        raise ValueError("the student must see every teacher crop and at least one more crop")
    targets = [teacher_probabilities(t.detach(), center, teacher_temp) for t in teacher_logits]
    log_probs = [F.log_softmax(s / student_temp, dim=-1) for s in student_logits]
    losses = [-(target * log_prob).sum(dim=-1).mean()
              for t_index, target in enumerate(targets)
              for s_index, log_prob in enumerate(log_probs) if s_index != t_index]
    return torch.stack(losses).mean()


class Dino(nn.Module):
    """DINO around a Kestrel backbone (anything with ``forward_features(x)["cls"]`` and
    ``embed_dim``). ``loss`` is also ``forward``, so the module can be wrapped in
    DistributedDataParallel; call ``after_step`` after every optimizer step."""

    def __init__(self, backbone: nn.Module, config: DinoConfig = DinoConfig()) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.head = DinoHead(backbone.embed_dim, config)
        self.teacher_backbone = copy.deepcopy(backbone).requires_grad_(False)
        self.teacher_head = copy.deepcopy(self.head).requires_grad_(False)
        self.register_buffer("center", torch.zeros(1, config.out_dim))
        self._teacher_mean: torch.Tensor | None = None
        self.last_teacher_entropy = float("nan")

    def augment(self, images: torch.Tensor, generator: torch.Generator) -> DinoBatch:
        """Multi-crop views of ``(B, 3, H, W)`` images in [0, 1]."""
        return multi_crop(images, self.config.crops, generator)

    def student(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        """Student logits per view; views of one size go through the network together."""
        return _per_view(lambda x: self.head(embed(self.backbone, x)), views)

    @torch.no_grad()
    def teacher(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        """Teacher logits per (global) view."""
        return _per_view(lambda x: self.teacher_head(embed(self.teacher_backbone, x)), views)

    def loss(self, batch: DinoBatch) -> torch.Tensor:
        """Scalar DINO loss of one multi-crop batch (see :meth:`augment`)."""
        global_views, local_views = batch
        teacher_logits = self.teacher(global_views)
        student_logits = self.student(global_views) + self.student(local_views)
        with torch.no_grad():
            stacked = torch.cat(teacher_logits)
            self._teacher_mean = stacked.mean(dim=0, keepdim=True)
            targets = teacher_probabilities(stacked, self.center, self.config.teacher_temp)
            entropy = -(targets * targets.clamp_min(1e-12).log()).sum(dim=-1).mean()
            self.last_teacher_entropy = float(entropy)
        return dino_loss(student_logits, teacher_logits, self.center,
                         self.config.student_temp, self.config.teacher_temp)

    def forward(self, batch: DinoBatch) -> torch.Tensor:
        return self.loss(batch)

    @torch.no_grad()
    def after_step(self) -> None:
        """Move the teacher towards the student and the centre towards the latest batch mean
        of the teacher logits (averaged over distributed ranks)."""
        ema_update(self.teacher_backbone, self.backbone, self.config.teacher_momentum)
        ema_update(self.teacher_head, self.head, self.config.teacher_momentum)
        if self._teacher_mean is not None:
            batch_mean = mean_all(self._teacher_mean)
            self.center.mul_(self.config.center_momentum).add_(
                batch_mean, alpha=1 - self.config.center_momentum)
            self._teacher_mean = None


def _per_view(network: Callable[[torch.Tensor], torch.Tensor],
              views: list[torch.Tensor]) -> list[torch.Tensor]:
    """Run ``network`` once per group of equally sized consecutive views; split per view."""
    outputs: list[torch.Tensor] = []
    start = 0
    while start < len(views):
        end = start
        while end < len(views) and views[end].shape == views[start].shape:
            end += 1
        outputs += list(network(torch.cat(views[start:end])).chunk(end - start))
        start = end
    return outputs
