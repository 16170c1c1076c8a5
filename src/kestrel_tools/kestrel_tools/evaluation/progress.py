"""Progress bars of long evaluations: tqdm on stderr, silent when stderr is not a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], total: int | None, label: str, enabled: bool) -> Iterator[T]:
    """``items`` with a progress bar labelled ``label`` (``disable=None``: terminals only)."""
    return iter(tqdm(items, total=total, desc=label, unit="frame", file=sys.stderr,
                     disable=None if enabled else True, leave=False))
