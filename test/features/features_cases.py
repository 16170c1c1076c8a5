"""Small backbones shared by the feature tests (fast on a CPU)."""

from __future__ import annotations

import torch

from kestrel_core.features import build_backbone

# name -> overrides that keep each architecture but make it small.
SMALL_BACKBONES = {
    "vit_tiny": {"depth": 2},
    "vit_small/8": {"patch_size": 8, "depth": 1, "embed_dim": 96, "num_heads": 2},
    "vit_small/14": {"patch_size": 14, "pos_grid": 37, "layer_scale": 1.0, "depth": 2, "embed_dim": 64,
                     "num_heads": 2},
    "vit_small/16": {"patch_size": 16, "depth": 1, "embed_dim": 64, "num_heads": 4},
    "cnn_small": {"widths": (16, 32, 64), "embed_dim": 48},
}


def small_backbone(key: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_backbone(key.split("/")[0], **SMALL_BACKBONES[key])
