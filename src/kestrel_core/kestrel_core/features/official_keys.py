"""Load the official DINO (ViT-S/8, ViT-S/16) and DINOv2 (ViT-S/14) ``.pth`` weights into
Kestrel's :class:`~kestrel_core.features.backbones.VisionTransformer`.

Official key names and Kestrel's differ only in a few places:

=======================================  ==========================
official                                 Kestrel
=======================================  ==========================
``patch_embed.proj.{weight,bias}``       ``patch_embed.{weight,bias}``
``blocks.<chunk>.<i>.*`` (DINOv2 FSDP)   ``blocks.<i>.*``
``mask_token``, ``head.*``               dropped (unused for features)
``module.``/``backbone.`` prefixes       stripped
=======================================  ==========================

The architecture (width, depth, patch size, stored position grid, LayerScale) is read off
the tensor shapes; heads are ``embed_dim // 64`` as in every official ViT.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch

from kestrel_core.features.backbones import VisionTransformer, build_backbone
from kestrel_core.features.checkpoint import load_state_dict_strict

_DROPPED_PREFIXES = ("mask_token", "head.")
_WRAPPER_PREFIXES = ("module.", "backbone.")
_CHUNKED_BLOCK = re.compile(r"^blocks\.\d+\.(\d+)\.")
HEAD_DIM = 64


def official_to_kestrel(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an official DINO / DINOv2 ViT state dict to Kestrel's key names.

    Accepts a plain state dict or a DINO training checkpoint holding one under ``teacher``.
    ``ValueError`` for register tokens (not supported by Kestrel's ViT).
    """
    if "teacher" in state_dict and isinstance(state_dict["teacher"], dict):
        state_dict = state_dict["teacher"]
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        if key.startswith(_DROPPED_PREFIXES):
            continue
        if key == "register_tokens":
            raise ValueError("checkpoints with register tokens are not supported")
        key = _CHUNKED_BLOCK.sub(r"blocks.\1.", key)
        key = key.replace("patch_embed.proj.", "patch_embed.")
        renamed[key] = value
    return renamed


def official_overrides(state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Architecture overrides for :func:`build_backbone` read off a Kestrel-named state dict."""
    try:
        patch_weight = state_dict["patch_embed.weight"]  # (D, 3, p, p)
        pos_embed = state_dict["pos_embed"]  # (1, 1 + g*g, D)
    except KeyError as err:
        raise ValueError(f"not a ViT state dict: missing {err}") from err
    embed_dim, patch_size = int(patch_weight.shape[0]), int(patch_weight.shape[-1])
    grid = math.isqrt(int(pos_embed.shape[1]) - 1)
    if grid * grid != pos_embed.shape[1] - 1:
        raise ValueError(f"pos_embed of {pos_embed.shape[1]} tokens is not 1 + a square grid")
    depth = 1 + max(int(key.split(".")[1]) for key in state_dict if key.startswith("blocks."))
    hidden = int(state_dict["blocks.0.mlp.fc1.weight"].shape[0])
    return {
        "embed_dim": embed_dim,
        "depth": depth,
        "num_heads": max(1, embed_dim // HEAD_DIM),
        "patch_size": patch_size,
        "pos_grid": grid,
        "mlp_ratio": hidden / embed_dim,
        "layer_scale": 1.0 if "blocks.0.ls1.gamma" in state_dict else None,
    }


def backbone_from_official(state_dict: dict[str, torch.Tensor]) -> VisionTransformer:
    """Build a Kestrel ViT holding the official weights (strict keys)."""
    renamed = official_to_kestrel(state_dict)
    backbone = build_backbone("vit_small", **official_overrides(renamed))
    load_state_dict_strict(backbone, renamed, "official checkpoint")
    return backbone


def load_official_checkpoint(path: str | Path) -> VisionTransformer:
    """Read an official DINO / DINOv2 ``.pth`` file from ``path`` into a Kestrel ViT."""
    path = Path(path)
    if not path.is_file():
        raise OSError(f"official checkpoint not found: {path}")
    return backbone_from_official(torch.load(path, map_location="cpu", weights_only=True))
