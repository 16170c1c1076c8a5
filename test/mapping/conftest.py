"""Shared fixtures of the mapping tests."""

from __future__ import annotations

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Every test using it runs on the CPU and, where available, on CUDA."""
    return request.param


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Mapping runs thousands of small tensor operations; more threads only add contention
    on a shared machine. The previous setting is restored after each test module."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
