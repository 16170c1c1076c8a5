"""MoCo v2: momentum contrast (He et al., CVPR 2020; Chen et al., 2020).

A query encoder (backbone + MLP head) learns to pick the key of the other view of its image,
computed by a momentum (EMA) copy of itself, out of a queue of keys from earlier batches.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from kestrel_core.features.augment import ViewConfig, two_views
from kestrel_core.features.objectives.common import embed, ema_update, gather_all, mlp
from kestrel_core.losses.contrastive import info_nce

ViewPair = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class MocoConfig:
    """Head ``embed_dim -> hidden_dim -> dim``; ``queue_size`` negatives; key-encoder EMA
    ``momentum``; InfoNCE ``temperature``."""

    dim: int = 128
    hidden_dim: int = 512
    queue_size: int = 4096
    momentum: float = 0.99
    temperature: float = 0.2
    view: ViewConfig = field(default_factory=ViewConfig)

    def __post_init__(self) -> None:
        if self.queue_size < 1:
            raise ValueError(f"queue_size must be positive, got {self.queue_size}")
        if not 0 <= self.momentum <= 1:
            raise ValueError(f"momentum must lie in [0, 1], got {self.momentum}")


class KeyQueue(nn.Module):
    """First-in first-out ring of ``(K, D)`` L2-normalized keys, kept as buffers so that it
    is saved with the model; starts with random unit vectors."""

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def push(self, keys: torch.Tensor) -> None:
        """Replace the oldest entries by ``keys`` ``(N, D)``, wrapping around the end."""
        size = self.keys.shape[0]
        if keys.shape[0] > size:
            keys = keys[-size:]
        slots = (self.pointer + torch.arange(keys.shape[0], device=keys.device)) % size
        self.keys[slots] = F.normalize(keys.to(self.keys.dtype), dim=1)
        self.pointer.copy_((self.pointer + keys.shape[0]) % size)


class Moco(nn.Module):
    """MoCo v2 around a Kestrel backbone. ``loss`` is also ``forward`` (for
    DistributedDataParallel); call ``after_step`` after every optimizer step."""

    def __init__(self, backbone: nn.Module, config: MocoConfig = MocoConfig()) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.head = mlp(backbone.embed_dim, config.hidden_dim, config.dim, layers=2)
        self.key_backbone = copy.deepcopy(backbone).requires_grad_(False)
        self.key_head = copy.deepcopy(self.head).requires_grad_(False)
        self.queue = KeyQueue(config.queue_size, config.dim)
        self._new_keys: torch.Tensor | None = None

    def augment(self, images: torch.Tensor, generator: torch.Generator) -> ViewPair:
        """Two views of ``(B, 3, H, W)`` images in [0, 1]."""
        return two_views(images, self.config.view, generator)

    def loss(self, batch: ViewPair) -> torch.Tensor:
        """InfoNCE of the first view's queries against the second view's keys and the queue."""
        query_view, key_view = batch
        query = self.head(embed(self.backbone, query_view))
        with torch.no_grad():
            key = F.normalize(self.key_head(embed(self.key_backbone, key_view)), dim=1)
        self._new_keys = key
        return info_nce(query, key, self.queue.keys.clone(), self.config.temperature)

    def forward(self, batch: ViewPair) -> torch.Tensor:
        return self.loss(batch)

    @torch.no_grad()
    def after_step(self) -> None:
        """Move the key encoder towards the query encoder and enqueue the latest keys of
        every distributed rank."""
        ema_update(self.key_backbone, self.backbone, self.config.momentum)
        ema_update(self.key_head, self.head, self.config.momentum)
        if self._new_keys is not None:
            self.queue.push(gather_all(self._new_keys))
            self._new_keys = None
