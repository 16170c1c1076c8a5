"""Pieces shared by the self-supervised objectives: input normalization, projection heads,
exponential moving averages and gathering across distributed ranks."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from kestrel_core.features.model import IMAGENET_MEAN, IMAGENET_STD


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] -> ImageNet-normalized backbone input, as
    :class:`~kestrel_core.features.model.FeatureModel` feeds its backbone."""
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def embed(backbone: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The backbone's global embedding ``(B, D)`` of ``(B, 3, H, W)`` images in [0, 1]."""
    return backbone.forward_features(normalize_images(images))["cls"]


def mlp(in_dim: int, hidden_dim: int, out_dim: int, layers: int,
        batch_norm: bool = False) -> nn.Sequential:
    """``layers`` linear layers with GELU between them (and BatchNorm1d before each GELU when
    ``batch_norm``): ``(B, in_dim) -> (B, out_dim)``."""
    if layers < 1:
        raise ValueError(f"an MLP needs at least one layer, got {layers}")
    dims = [in_dim] + [hidden_dim] * (layers - 1) + [out_dim]
    modules: list[nn.Module] = []
    for index, (source, target) in enumerate(zip(dims[:-1], dims[1:])):
        modules.append(nn.Linear(source, target))
        if index < layers - 1:
            if batch_norm:
                modules.append(nn.BatchNorm1d(target))
            modules.append(nn.GELU())
    return nn.Sequential(*modules)


@torch.no_grad()
def ema_update(target: nn.Module, source: nn.Module, momentum: float) -> None:
    """``target <- momentum * target + (1 - momentum) * source`` for every parameter; buffers
    (BatchNorm statistics) are copied. The two modules must have the same structure."""
    if not 0 <= momentum <= 1:
        raise ValueError(f"momentum must lie in [0, 1], got {momentum}")
    for target_param, source_param in zip(target.parameters(), source.parameters()):
        target_param.lerp_(source_param.detach(), 1 - momentum)
    for target_buffer, source_buffer in zip(target.buffers(), source.buffers()):
        target_buffer.copy_(source_buffer)


def gather_all(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``(N, ...)`` tensors of every distributed rank in rank order (no gradient);
    the tensor itself when torch.distributed is not initialized."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def mean_all(tensor: torch.Tensor) -> torch.Tensor:
    """Mean of ``tensor`` over the distributed ranks; the tensor itself outside of them."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    total = tensor.clone()
    dist.all_reduce(total)
    return total / dist.get_world_size()
