"""Self-supervised objectives that train Kestrel feature backbones.

Each is an ``nn.Module`` around a backbone with ``augment(images, generator) -> batch``,
``loss(batch) -> scalar`` (also its ``forward``, for DistributedDataParallel) and
``after_step()`` for the updates outside the optimizer (EMA teacher, queue, centre):

* :class:`Dino` - self-distillation with multi-crop (DINO).
* :class:`Moco` - momentum contrast with a queue of negatives (MoCo v2).
* :class:`Simclr` - in-batch contrast with NT-Xent (SimCLR).
"""

from __future__ import annotations

from torch import nn

from kestrel_core.features.augment import MultiCropConfig, ViewConfig
from kestrel_core.features.objectives.dino import Dino, DinoConfig
from kestrel_core.features.objectives.moco import Moco, MocoConfig
from kestrel_core.features.objectives.simclr import Simclr, SimclrConfig

METHODS = ("dino", "moco", "simclr")


def build_objective(method: str, backbone: nn.Module, view_size: int = 96) -> nn.Module:
    """The objective ``method`` (one of :data:`METHODS`) around ``backbone`` with default
    settings and views (global crops for DINO) of ``view_size`` pixels."""
    if method == "dino":
        crops = MultiCropConfig(global_size=view_size, local_size=max(8, view_size // 2))
        return Dino(backbone, DinoConfig(crops=crops))
    if method == "moco":
        return Moco(backbone, MocoConfig(view=ViewConfig(size=view_size)))
    if method == "simclr":
        return Simclr(backbone, SimclrConfig(view=ViewConfig(size=view_size)))
    raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


__all__ = ["METHODS", "Dino", "DinoConfig", "Moco", "MocoConfig", "Simclr", "SimclrConfig",
           "build_objective"]
