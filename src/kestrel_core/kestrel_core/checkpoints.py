"""Kestrel's checkpoint files: a model's weights together with its config and a record.

A checkpoint is ``torch.save`` of ``{"format": FORMAT, "config": {...}, "state_dict":
{...}, "training": {...}}``. ``FORMAT`` names the model family and version (e.g.
``kestrel-flow/1``), so a file of another family is refused with a clear message instead of
failing on key names. Loading is strict: a missing or unexpected weight is an error that
names the keys.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from kestrel_core.weights import shipped_weights

__all__ = ["config_record", "save_model", "read_checkpoint", "load_weights_strict"]


def save_model(path: str | Path, model: nn.Module, checkpoint_format: str, config: dict,
               training: dict | None = None) -> Path:
    """Write ``model``'s weights (moved to the CPU) with ``config`` and ``training``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"format": checkpoint_format, "config": config, "state_dict": state,
                "training": dict(training or {})}, path)
    return path


def read_checkpoint(path: str | Path | None, checkpoint_format: str, what: str,
                    shipped: str | None = None) -> tuple[Path, dict]:
    """Read and check a checkpoint; return its path and contents.

    Args:
        path: the file; None or "" means the shipped ``<shipped>.pt``.
        what: the model's name in messages, e.g. "flow model".

    Raises:
        OSError: no such file, or nothing shipped.
        ValueError: unreadable, or not of ``checkpoint_format``.
    """
    if path in (None, ""):
        path = shipped_weights(shipped) if shipped else None
        if path is None:
            raise OSError(f"no {what} path given and no shipped {what} is installed")
    path = Path(path)
    if not path.is_file():
        raise OSError(f"no such {what} file: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a damaged or foreign file
        raise ValueError(f"{path}: not a readable torch checkpoint ({err})") from err
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != checkpoint_format:
        raise ValueError(f"{path}: not a Kestrel {what} checkpoint (format {checkpoint_format!r})")
    return path, checkpoint


def load_weights_strict(model: nn.Module, state_dict: dict, source: Path | str) -> nn.Module:
    """Load ``state_dict`` into ``model``; ValueError naming the keys when they differ."""
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    if missing or unexpected:
        raise ValueError(f"{source}: weights do not match the config: missing {sorted(missing)}, "
                         f"unexpected {sorted(unexpected)}")
    return model


def config_record(config: object) -> dict:
    """A frozen config dataclass as plain dicts and lists, for a checkpoint's training record
    (tuples become lists, so the file stays loadable with ``weights_only=True``)."""
    def plain(value: object) -> object:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        return value

    return plain(asdict(config))
