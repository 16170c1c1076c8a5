"""SimCLR: contrastive learning with in-batch negatives (Chen et al., ICML 2020).

Both views of an image go through the same backbone and MLP projection head; NT-Xent pulls
the two projections together and pushes away those of the other images of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from kestrel_core.features.augment import ViewConfig, two_views
from kestrel_core.features.objectives.common import embed, mlp
from kestrel_core.losses.contrastive import nt_xent

ViewPair = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class SimclrConfig:
    """Head ``embed_dim -> hidden_dim -> dim`` (BatchNorm in the hidden layer) and the NT-Xent
    ``temperature``. Negatives are the local batch of each rank."""

    dim: int = 128
    hidden_dim: int = 512
    temperature: float = 0.2
    view: ViewConfig = field(default_factory=ViewConfig)


class Simclr(nn.Module):
    """SimCLR around a Kestrel backbone; ``loss`` is also ``forward``. ``after_step`` is a
    no-op, kept so that every objective is driven the same way."""

    def __init__(self, backbone: nn.Module, config: SimclrConfig = SimclrConfig()) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.head = mlp(backbone.embed_dim, config.hidden_dim, config.dim, layers=2,
                        batch_norm=True)

    def augment(self, images: torch.Tensor, generator: torch.Generator) -> ViewPair:
        """Two views of ``(B, 3, H, W)`` images in [0, 1]."""
        return two_views(images, self.config.view, generator)

    def loss(self, batch: ViewPair) -> torch.Tensor:
        """NT-Xent between the projections of the two views (one forward pass for both)."""
        first, second = batch
        projections = self.head(embed(self.backbone, torch.cat([first, second])))
        return nt_xent(*projections.chunk(2), temperature=self.config.temperature)

    def forward(self, batch: ViewPair) -> torch.Tensor:
        return self.loss(batch)

    def after_step(self) -> None:
        """Nothing to update outside the optimizer."""
