"""``kestrel eval``: score results against ground truth.

- ``kestrel eval trajectory EST REF [--report DIR]``: ATE and RPE of two trajectory files,
  with a report folder like every eval run.
- ``kestrel eval BAG --task stereo|flow|depth|trajectory|all [--out DIR]`` (also spelled
  ``kestrel eval bag BAG ...``): run the core on a bag and score it against the bag's
  ground-truth topics; ``--predictions BAG2`` also scores disparities recorded from a node.

The first word after ``eval`` picks a target from ``TARGETS``; any other word is a bag path
(a bag literally named ``trajectory`` is given as ``eval bag trajectory``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kestrel_tools.trajectory import (ALIGN_MODES, DELTA_UNITS, FORMATS, evaluate,
                                      load_trajectory)

BAG_TARGET = "bag"
TASK_CHOICES = ("stereo", "flow", "depth", "trajectory", "mapping", "all")


class TargetOrBag(argparse._SubParsersAction):
    """Sub-parsers of the eval targets; a first word that names none is read as a bag path."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.choices = None  # argparse then accepts any first word; __call__ sorts it out

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: list[str], option_string: str | None = None) -> None:
        if values and values[0] not in self._name_parser_map:
            values = [BAG_TARGET, *values]
        super().__call__(parser, namespace, values, option_string)


def add_trajectory_parser(targets: argparse._SubParsersAction) -> None:
    parser = targets.add_parser(
        "trajectory", help="ATE and RPE of an estimated trajectory against a reference",
        description="Associate poses by timestamp, align the estimate onto the reference, and "
                    "print ATE and RPE; the last line is a JSON object with ate_rmse (m), "
                    "rpe_rmse (m), rpe_rot_deg, pairs, align and scale.")
    parser.add_argument("est", type=Path, help="estimated trajectory file")
    parser.add_argument("ref", type=Path, help="reference (ground truth) trajectory file")
    parser.add_argument("--align", choices=ALIGN_MODES, default="se3",
                        help="alignment of the estimate onto the reference (default se3)")
    parser.add_argument("--format", choices=FORMATS, default="tum",
                        help="format of both files (default tum)")
    parser.add_argument("--ref-format", choices=FORMATS,
                        help="format of the reference when it differs from --format")
    parser.add_argument("--max-diff", type=float, default=0.02,
                        help="largest time difference of associated poses, s (default 0.02)")
    parser.add_argument("--ref-times", type=Path,
                        help="KITTI times file of the reference (and of the estimate when "
                             "--est-times is not given); without one, poses pair by frame")
    parser.add_argument("--est-times", type=Path, help="KITTI times file of the estimate")
    parser.add_argument("--delta", type=float, default=1,
                        help="RPE separation of the compared poses (default 1); in frames it "
                             "counts associated pose pairs")
    parser.add_argument("--delta-unit", choices=DELTA_UNITS, default="frames",
                        help="unit of --delta: frames, m (path length) or s (default frames)")
    parser.add_argument("--report", type=Path, metavar="DIR",
                        help="folder of report.md, results.json and the x-y plot "
                             "(default out/eval/trajectory-<EST name>)")


def add_bag_parser(targets: argparse._SubParsersAction) -> None:
    from kestrel_tools.evaluation import FLOW_METHODS, EvalOptions

    defaults = EvalOptions()
    parser = targets.add_parser(
        BAG_TARGET, help="run the core on a bag and score it against its /ground_truth/* "
                         "topics (the default target: 'kestrel eval BAG ...')",
        description="Run the core offline and deterministically on a bag's synchronized "
                    "messages and score it against the ground-truth topics in the bag; write "
                    "report.md, results.json and PNG figures.")
    parser.add_argument("bag", type=Path, help="bag directory, .mcap or .db3 file")
    parser.add_argument("--task", choices=TASK_CHOICES, nargs="+", default=["all"],
                        help="what to evaluate (default all: every task the bag has topics for)")
    parser.add_argument("--out", type=Path, help="report folder (default out/eval/<bag name>)")
    parser.add_argument("--predictions", type=Path, metavar="BAG2",
                        help="a bag recorded from a running stereo node: score its "
                             "DisparityImage messages against this bag's ground truth")
    parser.add_argument("--predictions-topic", default="/stereo/disparity",
                        help="DisparityImage topic in BAG2 (default /stereo/disparity)")
    parser.add_argument("--predictions-flow-topic", metavar="T",
                        help="also score the flows (32FC2 Image) on T in BAG2 by the "
                             "photometric error on this bag's /camera/image")
    parser.add_argument("--max-disparity", type=int, default=defaults.max_disparity)
    parser.add_argument("--flow-method", choices=FLOW_METHODS, default=defaults.flow_method)
    parser.add_argument("--device", default=defaults.device,
                        help="torch device of SGM and LK (default cpu: reproducible)")
    parser.add_argument("--trajectory-topic", default=defaults.trajectory_topic,
                        help="TFMessage, PoseStamped or Odometry topic of the estimate")
    parser.add_argument("--odom-frame", default=defaults.odom_frame)
    parser.add_argument("--base-frame", default=defaults.base_frame)


TARGETS = {"trajectory": add_trajectory_parser, BAG_TARGET: add_bag_parser}


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("eval", help="evaluate results against ground truth",
                            description="Evaluate results against ground truth: 'kestrel eval "
                                        "trajectory EST REF' or 'kestrel eval BAG --task ...'.")
    parser.register("action", "parsers", TargetOrBag)
    targets = parser.add_subparsers(dest="target", required=True, metavar="TARGET|BAG")
    for add in TARGETS.values():
        add(targets)
    parser.set_defaults(run=run)


def run_trajectory(args: argparse.Namespace) -> int:
    if args.max_diff < 0:
        raise ValueError(f"--max-diff must be >= 0, got {args.max_diff}")
    ref_format = args.ref_format or args.format
    est_times = args.est_times or (args.ref_times if args.format == "kitti" else None)
    for option, value, fmt in (("--ref-times", args.ref_times, ref_format),
                               ("--est-times", args.est_times, args.format)):
        if value is not None and fmt != "kitti":
            raise ValueError(f"{option} applies to the kitti format only")
    est = load_trajectory(args.est, args.format, est_times)
    ref = load_trajectory(args.ref, ref_format, args.ref_times)
    errors = evaluate(est, ref, args.align, args.max_diff, args.delta, args.delta_unit)
    unit = {"frames": "frame(s)", "m": "m", "s": "s"}[args.delta_unit]
    print(f"{args.est} vs {args.ref}: {errors.pairs} pose pairs within {args.max_diff} s "
          f"(of {len(est)} and {len(ref)} poses)")
    print(f"alignment {errors.align}, scale {errors.scale:.6f}")
    print(f"ATE RMSE {errors.ate_rmse:.6f} m")
    print(f"RPE RMSE {errors.rpe_rmse:.6f} m, {errors.rpe_rot_deg:.4f} deg "
          f"(delta {args.delta:g} {unit})")
    report_dir = args.report or Path("out") / "eval" / f"trajectory-{args.est.stem}"
    print(f"report: {_trajectory_report(args, report_dir, est, ref, errors)}")
    print(json.dumps(errors.summary()))  # the last line, for scripts
    return 0


def _trajectory_report(args: argparse.Namespace, folder: Path, est, ref, errors) -> Path:
    from kestrel_tools.evaluation import Figure, TaskResult
    from kestrel_tools.evaluation.trajectory import aligned_positions
    from kestrel_tools.reports import write_report

    result = TaskResult("trajectory", summary=errors.summary(), figures=[Figure(
        "trajectory", "trajectory", aligned_positions(est, ref, errors, args.max_diff),
        f"{args.est.name} aligned ({errors.align}) vs {args.ref.name}, x-y (m)")])
    return write_report(folder, [result], "Trajectory evaluation",
                        {"estimate": str(args.est), "reference": str(args.ref)})


def run_bag(args: argparse.Namespace) -> int:
    from kestrel_tools.evaluation import EvalOptions
    from kestrel_tools.evaluation.runner import evaluate_bag
    from kestrel_tools.reports import summary_lines, write_report

    options = EvalOptions(max_disparity=args.max_disparity, device=args.device,
                          flow_method=args.flow_method, trajectory_topic=args.trajectory_topic,
                          odom_frame=args.odom_frame, base_frame=args.base_frame)
    tasks = ["all"] if "all" in args.task else list(dict.fromkeys(args.task))
    if args.predictions_flow_topic and args.predictions is None:
        raise ValueError("--predictions-flow-topic needs --predictions BAG2")
    results = evaluate_bag(args.bag, tasks, options, args.predictions, args.predictions_topic,
                           args.predictions_flow_topic)
    out = args.out or Path("out") / "eval" / args.bag.name
    meta = {"bag": str(args.bag), "tasks": " ".join(r.task for r in results),
            "max_disparity": str(options.max_disparity), "flow_method": options.flow_method,
            "device": options.device}
    if args.predictions is not None:
        meta["predictions"] = f"{args.predictions} {args.predictions_topic}"
    report = write_report(out, results, f"Evaluation of {args.bag.name}", meta)
    print("\n".join(summary_lines(results)))
    print(f"report: {report}")
    return 0


RUNNERS = {"trajectory": run_trajectory, BAG_TARGET: run_bag}


def run(args: argparse.Namespace) -> int:
    return RUNNERS[args.target](args)
