"""Shared fixtures of the core tests."""

from __future__ import annotations

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Every test using it runs on the CPU and, where available, on CUDA."""
    return request.param
