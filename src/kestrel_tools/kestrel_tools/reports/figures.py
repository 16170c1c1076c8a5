"""PNG pictures of evaluation figures.

- ``disparity``, ``depth`` and ``flow`` maps are written at their own resolution as exact
  colourizations (turbo scale from 0 to ``vmax``, black where unknown; the Middlebury wheel for
  flow), so a pixel of the PNG is the colour of that pixel of the map.
- ``error`` maps and ``trajectory`` plots are matplotlib figures (Agg backend) with a colour
  bar or axes in metres.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402

from kestrel_core.flow import flow_to_color  # noqa: E402
from kestrel_tools.evaluation.results import Figure  # noqa: E402
from kestrel_tools.image_io import colorize_disparity, write_rgb_png  # noqa: E402

ESTIMATE_COLOR, REFERENCE_COLOR = "#d62728", "#1f77b4"
DPI = 100


def colorize(figure: Figure) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of a ``disparity``, ``depth`` or ``flow`` figure."""
    if figure.kind == "flow":
        return flow_to_color(figure.data, figure.vmax)
    return colorize_disparity(figure.data, figure.vmax)


def _error_plot(figure: Figure, path: Path) -> None:
    height, width = figure.data.shape
    fig, ax = plt.subplots(figsize=(width / DPI + 1.5, height / DPI + 0.6), dpi=DPI)
    cmap = plt.get_cmap("inferno").with_extremes(bad="black")
    shown = ax.imshow(np.ma.masked_invalid(figure.data), cmap=cmap, vmin=0.0, vmax=figure.vmax)
    ax.set_title(figure.title)
    ax.set_axis_off()
    fig.colorbar(shown, ax=ax, fraction=0.04)
    fig.savefig(path)
    plt.close(fig)


def _trajectory_plot(figure: Figure, path: Path) -> None:
    estimate, reference = figure.data
    fig, ax = plt.subplots(figsize=(6, 5), dpi=DPI)
    ax.plot(reference[:, 0], reference[:, 1], color=REFERENCE_COLOR, linewidth=2,
            label="ground truth")
    ax.plot(estimate[:, 0], estimate[:, 1], color=ESTIMATE_COLOR, linewidth=2,
            label="estimate (aligned)")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(figure.title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_figure(figure: Figure, folder: Path) -> Path:
    """Write ``folder/<figure.name>.png`` and return its path."""
    path = folder / f"{figure.name}.png"
    if figure.kind == "error":
        _error_plot(figure, path)
    elif figure.kind == "trajectory":
        _trajectory_plot(figure, path)
    else:
        write_rgb_png(path, colorize(figure))
    return path
