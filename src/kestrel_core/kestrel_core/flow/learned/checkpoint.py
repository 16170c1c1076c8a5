"""Saving and loading :class:`PyramidFlowNet` checkpoints that carry their own config.

A checkpoint is ``torch.save`` of ``{"format": "kestrel-flow/1", "config": {...},
"state_dict": {...}, "training": {...}}``; ``training`` is free-form (data, steps, losses).
Loading is strict: a missing or unexpected key is an error naming the keys.
"""

from __future__ import annotations

from pathlib import Path

import torch

from kestrel_core.checkpoints import load_weights_strict, read_checkpoint, save_model
from kestrel_core.device import resolve_device
from kestrel_core.flow.learned.network import FlowNetConfig, PyramidFlowNet
from kestrel_core.weights import shipped_weights

__all__ = ["CHECKPOINT_FORMAT", "SHIPPED_MODEL", "save_flow_model", "load_flow_model",
           "default_flow_model_path"]

CHECKPOINT_FORMAT = "kestrel-flow/1"
SHIPPED_MODEL = "flow_small"


def save_flow_model(path: str | Path, model: PyramidFlowNet, training: dict | None = None) -> Path:
    """Write ``model`` with its config (weights moved to the CPU) and return the path."""
    return save_model(path, model, CHECKPOINT_FORMAT, model.config.to_dict(), training)


def default_flow_model_path() -> Path | None:
    """The flow model shipped with Kestrel, or None if this installation lacks it."""
    return shipped_weights(SHIPPED_MODEL)


def load_flow_model(path: str | Path | None, device: str | torch.device = "cpu") -> PyramidFlowNet:
    """Load a checkpoint written by :func:`save_flow_model` onto ``device``, in eval mode.

    Args:
        path: checkpoint file; None or "" loads the shipped model.

    Raises:
        OSError: no such file (or no shipped model).
        ValueError: not a Kestrel flow checkpoint, or its keys do not match the config.
    """
    path, checkpoint = read_checkpoint(path, CHECKPOINT_FORMAT, "flow model", SHIPPED_MODEL)
    model = PyramidFlowNet(FlowNetConfig.from_dict(checkpoint["config"]))
    load_weights_strict(model, checkpoint["state_dict"], path)
    return model.to(resolve_device(device)).eval()
