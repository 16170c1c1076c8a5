"""What an evaluation produces: numbers, per-frame rows and the maps a report draws."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FIGURE_KINDS = ("disparity", "depth", "flow", "error", "trajectory")


@dataclass(frozen=True)
class Figure:
    """One picture for the report; :mod:`kestrel_tools.reports` decides how to draw it.

    Attributes:
        name: file stem of the PNG, e.g. ``stereo_error``.
        kind: ``disparity`` / ``depth`` / ``error``: an ``(H, W)`` float map, NaN unknown;
            ``flow``: ``(H, W, 2)``; ``trajectory``: ``(2, N, 3)`` positions, the estimate
            aligned onto the reference and the reference.
        data: the array described by ``kind``.
        title: caption.
        vmax: top of the colour scale (None: the data's maximum).
    """

    name: str
    kind: str
    data: np.ndarray
    title: str
    vmax: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in FIGURE_KINDS:
            raise ValueError(f"figure kind must be one of {FIGURE_KINDS}, got {self.kind!r}")


@dataclass
class TaskResult:
    """The outcome of one task of ``kestrel eval``.

    Attributes:
        task: ``stereo``, ``flow``, ``depth``, ``trajectory`` or ``predictions``.
        summary: headline numbers (metric name -> value), averaged over frames.
        rows: one dict per evaluated frame (``stamp_ns`` plus the metrics).
        figures: pictures of the first evaluated frame (or the whole trajectory).
        notes: sentences for the report (what was compared, what was skipped).
    """

    task: str
    summary: dict[str, float | int | str] = field(default_factory=dict)
    rows: list[dict[str, float | int | str]] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def mean_rows(rows: list[dict], keys: tuple[str, ...], prefix: str = "") -> dict[str, float]:
    """Mean of ``keys`` over ``rows`` (NaN values are left out), as ``prefix + key``."""
    out = {}
    for key in keys:
        values = np.array([row[key] for row in rows if key in row], dtype=np.float64)
        finite = values[np.isfinite(values)]
        out[prefix + key] = float(finite.mean()) if finite.size else float("nan")
    return out
