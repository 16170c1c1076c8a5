"""``write_report``: ``report.md`` (tables), ``results.json`` and the PNGs of an evaluation."""

from __future__ import annotations

import json
import math
from pathlib import Path

from kestrel_tools.evaluation.results import TaskResult
from kestrel_tools.reports.figures import write_figure

REPORT_FILE, RESULTS_FILE = "report.md", "results.json"


def format_value(value: object) -> str:
    """A table cell: floats with 4 significant digits, NaN as ``-``."""
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def json_ready(value: object) -> object:
    """``value`` with NaN and inf replaced by None (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    return value


def markdown_table(rows: list[dict]) -> list[str]:
    """A markdown table of dicts; the columns are the keys in order of first appearance."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(format_value(row.get(c, "")) for c in columns) + " |"
              for row in rows]
    return lines


def summary_lines(results: list[TaskResult]) -> list[str]:
    """One markdown table, task / metric / value, of every headline number."""
    return markdown_table([{"task": r.task, "metric": key, "value": value}
                           for r in results for key, value in r.summary.items()])


def write_report(folder: Path, results: list[TaskResult], title: str,
                 meta: dict[str, str]) -> Path:
    """Write the report of ``results`` into ``folder`` (created if needed).

    Args:
        folder: output directory; ``report.md``, ``results.json`` and one PNG per figure.
        results: the evaluated tasks.
        title: first heading of the report.
        meta: what was evaluated (bag, options), listed under the title and saved in JSON.

    Returns:
        The path of ``report.md``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", ""] + [f"- {key}: `{value}`" for key, value in meta.items()]
    lines += ["", "## Summary", "", *summary_lines(results)]
    tasks = {}
    for result in results:
        pictures = [write_figure(figure, folder).name for figure in result.figures]
        lines += ["", f"## {result.task}", "", *result.notes]
        if result.rows:
            lines += ["", *markdown_table(result.rows)]
        lines += [""] + [f"![{name}]({name})" for name in pictures]
        tasks[result.task] = {"summary": result.summary, "rows": result.rows,
                              "notes": result.notes, "figures": pictures}
    (folder / RESULTS_FILE).write_text(json.dumps(json_ready({"title": title, "meta": meta,
                                                              "tasks": tasks}), indent=2))
    report = folder / REPORT_FILE
    report.write_text("\n".join(lines) + "\n")
    return report
