"""Feature backbones: a Vision Transformer (DINO / DINOv2 layout) and a small stride-8 CNN.

Every backbone built by :func:`build_backbone` has

* ``embed_dim`` — channels ``D`` of its outputs,
* ``stride`` — pixels per output cell: cell ``(i, j)`` covers rows ``[i*stride, (i+1)*stride)``
  and columns ``[j*stride, (j+1)*stride)`` of the input,
* ``forward_features(x)`` with ``x`` a normalized ``(B, 3, H, W)`` batch, returning
  ``{"cls": (B, D), "patches": (B, D, h, w)}`` with ``h = H // stride``, ``w = W // stride``.

Inputs whose height or width is not a multiple of ``stride`` are cropped at the bottom and
right to the largest multiple (the cropped pixels belong to no cell); both must be at least
``stride``. ViTs interpolate their positional embeddings to any grid size and also offer
``get_intermediate_layers`` and ``last_attention_kqv``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ViTConfig:
    """Architecture of a :class:`VisionTransformer`.

    ``pos_grid`` is the side of the square patch grid the positional embeddings are stored
    for (e.g. 14 for DINO ViT-S/16 at 224 px, 37 for DINOv2 ViT-S/14 at 518 px).
    ``layer_scale`` is the initial LayerScale value; ``None`` builds blocks without it (DINO),
    a float builds them with it (DINOv2).
    ``pos_antialias`` selects antialiased bicubic resampling of the positional embeddings.
    """

    embed_dim: int = 384
    depth: int = 12
    num_heads: int = 6
    patch_size: int = 16
    pos_grid: int = 14
    mlp_ratio: float = 4.0
    layer_scale: float | None = None
    norm_eps: float = 1e-6
    pos_antialias: bool = False

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.patch_size < 1 or self.depth < 1 or self.pos_grid < 1:
            raise ValueError("patch_size, depth and pos_grid must be positive")


@dataclass(frozen=True)
class CNNConfig:
    """Architecture of a :class:`SmallCNN`: three stride-2 stages (stride 8) of ``widths``,
    each followed by ``blocks_per_stage`` residual blocks, then a 1x1 projection to ``embed_dim``."""

    widths: tuple[int, int, int] = (32, 64, 128)
    blocks_per_stage: int = 1
    embed_dim: int = 128
    groups: int = 8

    def __post_init__(self) -> None:
        if len(self.widths) != 3:
            raise ValueError("widths must have three entries (one per stride-2 stage)")
        if any(w % self.groups for w in self.widths):
            raise ValueError(f"every width in {self.widths} must be divisible by groups={self.groups}")


def _crop_to_multiple(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Crop ``(B, 3, H, W)`` at the bottom/right to multiples of ``stride``."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(x.shape)}")
    height, width = x.shape[-2:]
    if height < stride or width < stride:
        raise ValueError(f"image {height}x{width} is smaller than the stride {stride}")
    return x[..., : height - height % stride, : width - width % stride]


class Attention(nn.Module):
    """Multi-head self-attention with a fused q/k/v projection. Tokens are ``(B, T, D)``."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def qkv_heads(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Split into per-head ``q, k, v``, each ``(B, heads, T, D/heads)``."""
        batch, count, dim = tokens.shape
        qkv = self.qkv(tokens).reshape(batch, count, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        return q, k, v

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv_heads(tokens)
        mixed = F.scaled_dot_product_attention(q, k, v)
        return self.proj(mixed.transpose(1, 2).flatten(2))


class LayerScale(nn.Module):
    """Per-channel learnable scale ``gamma`` (DINOv2)."""

    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    """Two-layer perceptron with exact GELU."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + ls1(attn(norm1(x)))`` then ``x + ls2(mlp(norm2(x)))``."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        dim = cfg.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=cfg.norm_eps)
        self.attn = Attention(dim, cfg.num_heads)
        self.ls1 = LayerScale(dim, cfg.layer_scale) if cfg.layer_scale is not None else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=cfg.norm_eps)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio))
        self.ls2 = LayerScale(dim, cfg.layer_scale) if cfg.layer_scale is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class VisionTransformer(nn.Module):
    """ViT with a CLS token, learned positional embeddings interpolated to any grid, pre-norm
    blocks and a final LayerNorm. Parameter names: ``patch_embed`` (Conv2d), ``cls_token``
    ``(1, 1, D)``, ``pos_embed`` ``(1, 1 + pos_grid**2, D)``, ``blocks.<i>.*``, ``norm``."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.name = "vit_small"  # any ViT preset rebuilds it: checkpoints store the full config
        self.config = cfg
        self.embed_dim = cfg.embed_dim
        self.stride = cfg.patch_size
        self.num_heads = cfg.num_heads
        self.patch_embed = nn.Conv2d(3, cfg.embed_dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + cfg.pos_grid**2, cfg.embed_dim))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.norm_eps)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=1e-6)
        self.apply(_init_linear)

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        """Patch grid ``(h, w)`` for an input of ``height x width`` pixels (after cropping)."""
        return height // self.stride, width // self.stride

    def interpolated_pos_embed(self, grid_h: int, grid_w: int) -> torch.Tensor:
        """Positional embeddings for a ``grid_h x grid_w`` grid: ``(1, 1 + grid_h*grid_w, D)``.

        The stored square grid is resampled bicubically (``align_corners=False``); the CLS
        entry is kept as is.
        """
        side = self.config.pos_grid
        if (grid_h, grid_w) == (side, side):
            return self.pos_embed
        cls_pos, patch_pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        grid = patch_pos.reshape(1, side, side, self.embed_dim).permute(0, 3, 1, 2)
        grid = F.interpolate(
            grid.float(), size=(grid_h, grid_w), mode="bicubic", align_corners=False,
            antialias=self.config.pos_antialias,
        ).to(patch_pos.dtype)
        return torch.cat([cls_pos, grid.flatten(2).transpose(1, 2)], dim=1)

    def tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Embed ``(B, 3, H, W)`` into ``(B, 1 + h*w, D)`` tokens (before any block) and ``(h, w)``."""
        x = _crop_to_multiple(x, self.stride)
        patches = self.patch_embed(x)
        grid_h, grid_w = patches.shape[-2:]
        patches = patches.flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(patches.shape[0], -1, -1)
        tokens = torch.cat([cls, patches], dim=1) + self.interpolated_pos_embed(grid_h, grid_w)
        return tokens, (grid_h, grid_w)

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x`` normalized ``(B, 3, H, W)`` -> ``{"cls": (B, D), "patches": (B, D, h, w)}``
        from the final normalized tokens."""
        return self.forward_layer(x, len(self.blocks))

    def forward_layer(self, x: torch.Tensor, layer: int) -> dict[str, torch.Tensor]:
        """Like :meth:`forward_features` but from the output of block ``layer`` (1-based,
        passed through the final norm); later blocks are not run."""
        if not 1 <= layer <= len(self.blocks):
            raise ValueError(f"layer must be in [1, {len(self.blocks)}], got {layer}")
        tokens, (grid_h, grid_w) = self.tokens(x)
        for block in self.blocks[:layer]:
            tokens = block(tokens)
        tokens = self.norm(tokens)
        patches = tokens[:, 1:].transpose(1, 2).reshape(tokens.shape[0], self.embed_dim, grid_h, grid_w)
        return {"cls": tokens[:, 0], "patches": patches}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward_features(x)

    def get_intermediate_layers(self, x: torch.Tensor, n: int = 1) -> list[torch.Tensor]:
        """Outputs of the last ``n`` blocks, each passed through the final norm: a list of
        ``n`` tensors ``(B, 1 + h*w, D)`` (index 0 along dim 1 is CLS), shallowest first."""
        if not 1 <= n <= len(self.blocks):
            raise ValueError(f"n must be in [1, {len(self.blocks)}], got {n}")
        tokens, _ = self.tokens(x)
        outputs = []
        first_kept = len(self.blocks) - n
        for index, block in enumerate(self.blocks):
            tokens = block(tokens)
            if index >= first_kept:
                outputs.append(self.norm(tokens))
        return outputs

    def last_attention_kqv(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Keys, queries and values of the last block's attention:
        ``{"k", "q", "v"}`` each ``(B, heads, 1 + h*w, D/heads)``, index 0 is CLS."""
        tokens, _ = self.tokens(x)
        for block in self.blocks[:-1]:
            tokens = block(tokens)
        last = self.blocks[-1]
        q, k, v = last.attn.qkv_heads(last.norm1(tokens))
        return {"k": k, "q": q, "v": v}


def _init_linear(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with GroupNorm and a skip connection; shape preserving."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.GroupNorm(groups, channels),
            nn.GELU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.GroupNorm(groups, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x + self.body(x))


class SmallCNN(nn.Module):
    """Stride-8 convolutional backbone. ``patches`` are the projected stride-8 feature map;
    ``cls`` is their spatial mean."""

    def __init__(self, cfg: CNNConfig) -> None:
        super().__init__()
        self.name = "cnn_small"
        self.config = cfg
        self.embed_dim = cfg.embed_dim
        self.stride = 8
        stages: list[nn.Module] = []
        in_channels = 3
        for width in cfg.widths:
            stages.append(nn.Conv2d(in_channels, width, 3, stride=2, padding=1, bias=False))
            stages.append(nn.GroupNorm(cfg.groups, width))
            stages.append(nn.GELU())
            stages.extend(ResidualBlock(width, cfg.groups) for _ in range(cfg.blocks_per_stage))
            in_channels = width
        self.stages = nn.Sequential(*stages)
        self.head = nn.Conv2d(in_channels, cfg.embed_dim, 1)

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x`` normalized ``(B, 3, H, W)`` -> ``{"cls": (B, D), "patches": (B, D, H//8, W//8)}``."""
        patches = self.head(self.stages(_crop_to_multiple(x, self.stride)))
        return {"cls": patches.mean(dim=(2, 3)), "patches": patches}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward_features(x)


_VIT_PRESETS: dict[str, dict[str, Any]] = {
    "vit_tiny": {"embed_dim": 192, "depth": 12, "num_heads": 3},
    "vit_small": {"embed_dim": 384, "depth": 12, "num_heads": 6},
}

BACKBONE_NAMES: tuple[str, ...] = (*_VIT_PRESETS, "cnn_small")


def _default_pos_grid(patch_size: int) -> int:
    """Grid of a 224-pixel training image, the usual size for stored positional embeddings."""
    return max(1, math.floor(224 / patch_size))


def build_backbone(name: str, **overrides: Any) -> VisionTransformer | SmallCNN:
    """Build an untrained backbone by name (``vit_tiny``, ``vit_small``, ``cnn_small``).

    ``overrides`` replace fields of :class:`ViTConfig` or :class:`CNNConfig`, e.g.
    ``build_backbone("vit_small", patch_size=14, pos_grid=37, layer_scale=1.0)`` for the
    DINOv2 ViT-S/14 layout. When ``patch_size`` is given without ``pos_grid``, the grid of a
    224-pixel image is used. Unknown names or fields raise ``ValueError``.
    """
    backbone: VisionTransformer | SmallCNN
    if name == "cnn_small":
        backbone = SmallCNN(_make_config(CNNConfig, {}, overrides))
    elif name in _VIT_PRESETS:
        preset = dict(_VIT_PRESETS[name])
        if "patch_size" in overrides and "pos_grid" not in overrides:
            preset["pos_grid"] = _default_pos_grid(int(overrides["patch_size"]))
        backbone = VisionTransformer(_make_config(ViTConfig, preset, overrides))
    else:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONE_NAMES)}")
    backbone.name = name
    return backbone


def _make_config(cls: type, preset: dict[str, Any], overrides: dict[str, Any]) -> Any:
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {unknown}; known: {sorted(known)}")
    values = {**preset, **overrides}
    if "widths" in values:
        values["widths"] = tuple(values["widths"])
    return cls(**values)


def backbone_overrides(backbone: nn.Module) -> dict[str, Any]:
    """The full config of a built backbone as plain JSON-friendly values, suitable as
    ``overrides`` for :func:`build_backbone` (used by checkpoints)."""
    config = getattr(backbone, "config", None)
    if config is None or not dataclasses.is_dataclass(config):
        raise ValueError(f"{type(backbone).__name__} has no dataclass config")
    values = dataclasses.asdict(config)
    return {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()}
