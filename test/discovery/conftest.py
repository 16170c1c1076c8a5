"""Shared fixtures of the object-discovery tests."""

from __future__ import annotations

import pytest
import torch

from kestrel_core.features.backbones import build_backbone
from kestrel_core.features.checkpoint import save_checkpoint

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Every test using it runs on the CPU and, where available, on CUDA."""
    return request.param


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> str:
    """A randomly initialised 2-block ViT with 16-pixel patches, saved as a Kestrel checkpoint
    (architecture plumbing only: its features carry no meaning)."""
    torch.manual_seed(0)
    backbone = build_backbone("vit_tiny", depth=2, patch_size=16)
    path = tmp_path_factory.mktemp("discovery_model") / "tiny.pt"
    return str(save_checkpoint(path, backbone, {"model_id": "tiny-random"}))
