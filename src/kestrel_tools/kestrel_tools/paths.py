"""Where the tools find the checkout's config files and the shared real data.

The tools run from a source checkout (``make``, a colcon ``--symlink-install``); the
environment variables override both places for other layouts.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def config_dir() -> Path:
    """``$KESTREL_CONFIG_DIR``, else the checkout's ``config/``."""
    override = os.environ.get("KESTREL_CONFIG_DIR")
    return Path(override) if override else REPO_ROOT / "config"


def data_dir() -> Path:
    """``$KESTREL_DATA_DIR``, else ``../shared/data`` beside the checkout."""
    override = os.environ.get("KESTREL_DATA_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "data"
