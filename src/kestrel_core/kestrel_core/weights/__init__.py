"""Small models trained by the Kestrel project and shipped with the package.

Each ``<name>.pt`` sits beside ``<name>.md``, the record of how it was trained (command, data,
steps, time, final loss), so that the run can be reproduced.
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent


def shipped_weights(name: str) -> Path | None:
    """Path of the shipped ``<name>.pt``, or None when this installation lacks it."""
    path = WEIGHTS_DIR / f"{name}.pt"
    return path if path.is_file() else None
