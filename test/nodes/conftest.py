"""Fixtures shared by the node tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def pretrained_path() -> str:
    """Path of the pretrained ViT-S/14 feature checkpoint, installed once (skips where it cannot be)."""
    from kestrel_core.features.pretrained import ensure_pretrained_checkpoint

    try:
        return str(ensure_pretrained_checkpoint())
    except (OSError, ValueError, RuntimeError, ImportError) as err:
        pytest.skip(f"no pretrained feature model can be installed here: {err}")
