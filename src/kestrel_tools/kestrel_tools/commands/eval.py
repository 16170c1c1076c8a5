"""``kestrel eval trajectory EST REF``: trajectory errors (ATE, RPE) against ground truth.

``eval`` takes a target as its first argument; ``trajectory`` is the first one. Others (such
as scoring a replayed bag per task) go beside it as further entries of ``TARGETS``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kestrel_tools.trajectory import (ALIGN_MODES, DELTA_UNITS, FORMATS, evaluate,
                                      load_trajectory)


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


TARGETS = {"trajectory": add_trajectory_parser}


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("eval", help="evaluate results against ground truth",
                            description="Evaluate results against ground truth.")
    targets = parser.add_subparsers(dest="target", required=True, metavar="TARGET")
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
    print(json.dumps(errors.summary()))
    return 0


RUNNERS = {"trajectory": run_trajectory}


def run(args: argparse.Namespace) -> int:
    return RUNNERS[args.target](args)
