"""Inference wrapper around a feature backbone: ImageNet normalization inside, dense patch
features, a global embedding and the last layer's attention keys."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def rgb_to_batch(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 RGB -> ``(1, 3, H, W)`` float32 in ``[0, 1]`` (CPU)."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        described = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {described}")
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


class FeatureModel(nn.Module):
    """A backbone ready for inference on ``(B, 3, H, W)`` float RGB images in ``[0, 1]``.

    ``dense_layer`` (ViTs only) takes the dense features from that block (1-based, through
    the final norm) instead of the last one; ``embedding`` always uses the last block.

    Images are moved to the model's device and normalized with ImageNet mean/std here, so
    callers never normalize. Heights and widths that are not multiples of ``stride`` are
    cropped at the bottom/right by the backbone; cell ``(i, j)`` of every dense output covers
    pixels ``[i*stride, (i+1)*stride) x [j*stride, (j+1)*stride)``.
    """

    def __init__(self, backbone: nn.Module, model_id: str, dense_layer: int | None = None) -> None:
        super().__init__()
        if dense_layer is not None and not hasattr(backbone, "forward_layer"):
            raise ValueError(f"{type(backbone).__name__} has no layers to choose; dense_layer must be None")
        self.backbone = backbone
        self.model_id = model_id
        self.dense_layer = dense_layer
        self.stride: int = int(backbone.stride)
        self.embed_dim: int = int(backbone.embed_dim)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.eval()

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB in ``[0, 1]`` -> normalized ``(B, 3, H, W)`` on the model's device."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        if not images.is_floating_point():
            raise ValueError(f"expected float images in [0, 1], got dtype {images.dtype}")
        images = images.to(self.device, dtype=self.mean.dtype)
        return (images - self.mean) / self.std

    @torch.inference_mode()
    def dense(self, images: torch.Tensor) -> torch.Tensor:
        """Patch features ``(B, C, h, w)`` with ``h = H // stride``, ``w = W // stride``."""
        normalized = self.normalize(images)
        if self.dense_layer is not None:
            return self.backbone.forward_layer(normalized, self.dense_layer)["patches"]
        return self.backbone.forward_features(normalized)["patches"]

    @torch.inference_mode()
    def embedding(self, images: torch.Tensor) -> torch.Tensor:
        """Global image embedding ``(B, D)`` (CLS token for ViTs, mean feature for CNNs)."""
        return self.backbone.forward_features(self.normalize(images))["cls"]

    @torch.inference_mode()
    def dense_and_embedding(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(dense (B, C, h, w), embedding (B, D))`` from one forward pass, equal to
        :meth:`dense` and :meth:`embedding`."""
        normalized = self.normalize(images)
        if self.dense_layer is None:
            out = self.backbone.forward_features(normalized)
            return out["patches"], out["cls"]
        depth = len(self.backbone.blocks)
        layers = self.backbone.get_intermediate_layers(normalized, depth - self.dense_layer + 1)
        height, width = self.grid_size(*normalized.shape[-2:])
        patches = layers[0][:, 1:].transpose(1, 2).reshape(normalized.shape[0], -1, height, width)
        return patches, layers[-1][:, 0]

    @torch.inference_mode()
    def attention_keys(self, images: torch.Tensor) -> torch.Tensor:
        """Last-layer attention keys of the patches, ``(B, N, D)`` with ``N = h*w`` in row-major
        grid order, CLS dropped and heads concatenated. Backbones without attention (CNNs)
        return their dense features flattened the same way, ``(B, h*w, C)``."""
        normalized = self.normalize(images)
        if hasattr(self.backbone, "last_attention_kqv"):
            keys = self.backbone.last_attention_kqv(normalized)["k"][:, :, 1:]  # (B, heads, N, D/heads)
            return keys.permute(0, 2, 1, 3).flatten(2)
        return self.backbone.forward_features(normalized)["patches"].flatten(2).transpose(1, 2)

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        """Output grid ``(h, w)`` for an input of ``height x width`` pixels."""
        return height // self.stride, width // self.stride
