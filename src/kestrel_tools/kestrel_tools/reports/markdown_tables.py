"""A benchmark report's run folder from its markdown: tables as JSON rows, timings as plots.

``kestrel bench`` sections produce markdown. Its run folder keeps that text as ``report.md``,
every table of it as rows in ``results.json`` (``{section heading: [table, ...]}``, a table a
list of ``{column: cell}``), and one bar chart per table that has a milliseconds column
(``<section>-<n>.png``: each row's leading text cells against that column's values), linked
from the report.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
# A whole cell that is a value: 12, -0.5, 28.29%, 1.00x, **75.5** (not a label such as 640x480).
_VALUE_CELL = re.compile(r"\**[-+]?\d+(?:\.\d+)?(?:%|x)?\**")


def tables_by_section(lines: list[str]) -> dict[str, list[list[dict[str, str]]]]:
    """Every markdown table, as rows of ``{column: cell}``, under its ``## `` heading."""
    sections: dict[str, list[list[dict[str, str]]]] = {}
    heading, table = "", None
    for line in lines + [""]:
        if line.startswith("## "):
            heading = line[3:].strip()
        if line.startswith("|") and table is None:
            table = [line]
        elif line.startswith("|"):
            table.append(line)
        elif table is not None:
            sections.setdefault(heading, []).append(_rows(table))
            table = None
    return sections


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _rows(table: list[str]) -> list[dict[str, str]]:
    header = _cells(table[0])
    return [dict(zip(header, _cells(line))) for line in table[2:]]


def _time_column(rows: list[dict[str, str]]) -> str | None:
    for column in rows[0] if rows else ():
        if "ms" in column.split() or column.startswith("ms") or "(ms)" in column:
            return column
    return None


def plot_table(rows: list[dict[str, str]], column: str, title: str, path: Path) -> Path | None:
    """Horizontal bars of ``column`` (the first number of each cell), each labelled by the
    row's leading text cells (those before the first cell that is a value)."""
    label_columns = []
    for name, cell in rows[0].items():
        if _VALUE_CELL.fullmatch(cell):
            break
        label_columns.append(name)
    label_columns = label_columns or [next(iter(rows[0]))]
    points = [(" / ".join(row[c] for c in label_columns), float(m.group())) for row in rows
              if (m := _NUMBER.search(row.get(column, "").replace(",", "")))]
    if not points:
        return None
    figure, axes = plt.subplots(figsize=(8, 0.45 * len(points) + 1.4), dpi=100)
    axes.barh([label for label, _ in points][::-1], [value for _, value in points][::-1])
    axes.set_xlabel(column)
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def write_markdown_run_folder(lines: list[str], folder: Path) -> Path:
    """Write ``report.md`` (with plot links), ``results.json`` and the plots; return report.md."""
    folder.mkdir(parents=True, exist_ok=True)
    sections = tables_by_section(lines)
    pictures = []
    for heading, tables in sections.items():
        slug = re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-") or "report"
        for index, rows in enumerate(tables, start=1):
            column = _time_column(rows)
            if column is None:
                continue
            path = plot_table(rows, column, heading, folder / f"{slug}-{index}.png")
            if path is not None:
                pictures.append(path.name)
    (folder / "results.json").write_text(json.dumps(sections, indent=2) + "\n")
    report = folder / "report.md"
    report.write_text("\n".join(lines + ["", "## Plots", ""] + [f"![{p}]({p})" for p in pictures]) + "\n")
    return report
