"""``kestrel bench``: Kestrel against named baselines, measured in one run, as markdown.

Sections: stereo (Kestrel SGM vs OpenCV SGBM_3WAY) and optical flow (Kestrel LK vs
OpenCV DIS and Farneback). Times are medians of repeated runs after one warm-up.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import platform
from datetime import datetime, timezone
from pathlib import Path

import cv2
import torch

from kestrel_tools.benchmarks.discovery import discovery_section
from kestrel_tools.benchmarks.features import features_section
from kestrel_tools.benchmarks.flow import flow_section
from kestrel_tools.reports.markdown_tables import write_markdown_run_folder
from kestrel_tools.benchmarks.fusion import fusion_section
from kestrel_tools.benchmarks.graph import graph_section
from kestrel_tools.benchmarks.mapping import mapping_section
from kestrel_tools.benchmarks.stereo import stereo_section

# Section name -> function of the parsed arguments returning markdown lines, in report order.
# A benchmark module that needs heavy imports should import them inside its section function.
SECTIONS: dict[str, Callable[[argparse.Namespace], list[str]]] = {
    "stereo": lambda args: stereo_section(args.max_disparity, args.repeats),
    "flow": lambda args: flow_section(args.repeats),
    "graph": lambda args: graph_section(),
    "features": features_section,
    "fusion": fusion_section,
    "discovery": lambda args: discovery_section(args.repeats),
    "mapping": mapping_section,
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="benchmark against baselines and write markdown")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--run-folder", type=Path, default=Path("out/bench"),
                        help="also write report.md, results.json (every table as rows) and a "
                             "plot per timed table here (default out/bench)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case (median)")
    parser.add_argument("--max-disparity", type=int, default=128)
    parser.add_argument("--only", choices=list(SECTIONS), action="append",
                        help="run only these sections (repeatable); default: all")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.repeats < 1:
        raise ValueError(f"--repeats must be at least 1, got {args.repeats}")
    sections = args.only or list(SECTIONS)
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`kestrel bench`) on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"OpenCV {cv2.__version__}, torch {torch.__version__}"
        f"{', CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else ', no CUDA device'}.",
        "The machine is shared and noisy: compare ratios within one run, not across runs.",
        "",
    ]
    for name, section in SECTIONS.items():
        if name in sections:
            lines += section(args) + [""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")
    print(f"report: {write_markdown_run_folder(lines, args.run_folder)}")
    return 0
