"""``kestrel bench-graph``: latency, peak rate, CPU and memory of a node process over DDS.

The node is started here (in ``--domain-id``, on this host only), fed pre-serialized frames
built from the real recordings, and measured as ros2_benchmark does: latency from input stamp
to output arrival at a fixed rate, then the highest rate it keeps up with.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

DEFAULT_NODE = "stereo_depth"


def add_parser(sub: argparse._SubParsersAction) -> None:
    from kestrel_tools.graph_bench.rate_search import RateSearchConfig

    defaults = RateSearchConfig()
    parser = sub.add_parser(
        "bench-graph", help="benchmark a node process over DDS (latency, peak rate, CPU, memory)",
        description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("--node", default=DEFAULT_NODE,
                        help=f"node executable to start: stereo_depth or optical_flow "
                             f"(default {DEFAULT_NODE})")
    parser.add_argument("--params-file", type=Path,
                        help="the node's params file (default config/<node>.param.yaml)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                        help="a node parameter (repeatable)")
    parser.add_argument("--width", type=int, default=640, help="input width (default 640)")
    parser.add_argument("--height", type=int, default=480, help="input height (default 480)")
    parser.add_argument("--rate", type=float, default=10.0, help="fixed input rate, Hz (default 10)")
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of the fixed-rate run (default 10)")
    parser.add_argument("--peak", action=argparse.BooleanOptionalAction, default=True,
                        help="search the peak rate with few drops (default on)")
    parser.add_argument("--max-drop", type=float, default=defaults.max_drop,
                        help=f"drop share a sustainable rate stays under (default {defaults.max_drop})")
    parser.add_argument("--peak-start", type=float, default=defaults.start_hz,
                        help=f"first rate of the search, Hz (default {defaults.start_hz})")
    parser.add_argument("--peak-max", type=float, default=defaults.max_hz,
                        help=f"highest rate tried, Hz (default {defaults.max_hz})")
    parser.add_argument("--peak-trials", type=int, default=defaults.max_trials,
                        help=f"at most this many search trials (default {defaults.max_trials})")
    parser.add_argument("--trial-duration", type=float, default=4.0,
                        help="seconds per search trial (default 4)")
    parser.add_argument("--qos-depth", type=int, default=5,
                        help="history depth of the node's reliable subscriptions (default 5)")
    parser.add_argument("--domain-id", type=int,
                        help="ROS domain of the run (default $ROS_DOMAIN_ID or 0)")
    parser.add_argument("--out", type=Path, default=Path("out/bench-graph"),
                        help="run folder: report.md, results.json and PNG plots "
                             "(default out/bench-graph)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="write the markdown table")
    parser.set_defaults(run=run)


def config_from_args(args: argparse.Namespace):
    """The :class:`GraphBenchConfig` the arguments describe (raises ValueError)."""
    from kestrel_tools.graph_bench.rate_search import RateSearchConfig
    from kestrel_tools.graph_bench.runner import GraphBenchConfig

    if args.params_file is not None and not args.params_file.is_file():
        raise OSError(f"--params-file {args.params_file}: no such file")
    peak = None
    if args.peak:
        peak = RateSearchConfig(start_hz=args.peak_start, min_hz=min(RateSearchConfig.min_hz,
                                                                     args.peak_start),
                                max_hz=args.peak_max, max_drop=args.max_drop,
                                max_trials=args.peak_trials)
    domain_id = args.domain_id
    if domain_id is None:
        try:
            domain_id = int(os.environ.get("ROS_DOMAIN_ID", "0"))
        except ValueError as err:
            raise ValueError(f"ROS_DOMAIN_ID is not a number: {err}") from err
    return GraphBenchConfig(node=args.node, params_file=args.params_file,
                            overrides=tuple(args.param), width=args.width, height=args.height,
                            rate_hz=args.rate, duration_s=args.duration, peak=peak,
                            trial_duration_s=args.trial_duration, qos_depth=args.qos_depth,
                            domain_id=domain_id)


def run(args: argparse.Namespace) -> int:
    from kestrel_tools.graph_bench.report import markdown_lines, result_dict
    from kestrel_tools.graph_bench.run_folder import write_run_folder
    from kestrel_tools.graph_bench.runner import run_graph_bench

    config = config_from_args(args)
    result = run_graph_bench(config, progress=lambda text: print(text, file=sys.stderr))
    markdown = "\n".join(markdown_lines(result)) + "\n"
    print(markdown, end="")
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result_dict(result), indent=2) + "\n")
    print(f"report: {write_run_folder(result, args.out)}")
    return 0
