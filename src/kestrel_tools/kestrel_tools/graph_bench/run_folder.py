"""The run folder of ``kestrel bench-graph``: ``report.md``, ``results.json`` and PNG plots.

- ``latency.png``: median, p90 and max latency of each output topic at the fixed rate;
- ``peak_search.png``: the share of frames dropped or late at each rate the peak search
  tried, with the acceptance line (only when the search ran).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402

from kestrel_tools.graph_bench.report import markdown_lines, result_dict  # noqa: E402
from kestrel_tools.graph_bench.runner import GraphBenchResult  # noqa: E402

REPORT_FILE, RESULTS_FILE = "report.md", "results.json"
LATENCY_PLOT, PEAK_PLOT = "latency.png", "peak_search.png"


def plot_latency(result: GraphBenchResult, path: Path) -> Path:
    """Grouped bars: median / p90 / max latency (ms) per output topic at the fixed rate."""
    topics = result.fixed_rate.trial.topics
    positions = np.arange(len(topics))
    figure, axes = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    for offset, (label, key) in enumerate((("median", "median_ms"), ("p90", "p90_ms"),
                                           ("max", "max_ms"))):
        values = [getattr(t.latency, key) for t in topics]
        axes.bar(positions + (offset - 1) * 0.27, values, width=0.27, label=label)
    axes.set_xticks(positions, [t.topic for t in topics])
    axes.set_ylabel("latency vs input stamp (ms)")
    axes.set_title(f"{result.config.node} at {result.fixed_rate.trial.rate_hz:g} Hz, "
                   f"{result.config.width}x{result.config.height}")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def plot_peak_search(result: GraphBenchResult, path: Path) -> Path:
    """Share of frames dropped or late (%) at each tried rate, in trial order."""
    rates = [t.trial.rate_hz for t in result.peak_trials]
    missed = [100.0 * t.trial.miss_fraction for t in result.peak_trials]
    figure, axes = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    axes.plot(rates, missed, "o")
    for order, (rate, miss) in enumerate(zip(rates, missed), start=1):
        axes.annotate(str(order), (rate, miss), textcoords="offset points", xytext=(4, 4))
    axes.axhline(100.0 * result.config.peak.max_drop, color="gray", linestyle="--",
                 label="acceptance")
    axes.set_xlabel("input rate (Hz)")
    axes.set_ylabel("dropped or late (%)")
    peak = result.peak.peak_hz
    axes.set_title(f"peak search: {peak:.2f} Hz sustained" if peak is not None
                   else "peak search: no tried rate was sustained")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def write_run_folder(result: GraphBenchResult, folder: Path) -> Path:
    """Write the report, the JSON results and the plots into ``folder``; return report.md."""
    folder.mkdir(parents=True, exist_ok=True)
    plots = [plot_latency(result, folder / LATENCY_PLOT).name]
    if result.peak is not None and result.peak_trials:
        plots.append(plot_peak_search(result, folder / PEAK_PLOT).name)
    lines = [f"# kestrel bench-graph: {result.config.node}", "", *markdown_lines(result), ""]
    lines += [f"![{name}]({name})" for name in plots]
    (folder / RESULTS_FILE).write_text(json.dumps(result_dict(result), indent=2) + "\n")
    report = folder / REPORT_FILE
    report.write_text("\n".join(lines) + "\n")
    return report
