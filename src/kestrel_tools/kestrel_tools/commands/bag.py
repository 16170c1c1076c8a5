"""``kestrel bag make-sample``: build the sample recording from ``../shared/data``.

The bag's topics, frames and timing are listed in :mod:`kestrel_tools.sample`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kestrel_tools.bags.writer import STORAGES
from kestrel_tools.sample import SampleConfig, build_sample_bag

DEFAULT_SAMPLE = Path("out/sample_bag")


def add_make_sample_parser(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser(
        "make-sample", help="build the sample bag (stereo with ground truth, video, simulated "
                            "LiDAR, TF, poses, a mapping drive) from ../shared/data",
        description="Write the deterministic sample bag: Motorcycle and OAK-D stereo pairs, "
                    "vtest.avi frames, a LiDAR scan simulated from the Motorcycle ground "
                    "truth, TF and the TUM fr1_xyz trajectory, with ground truth on "
                    "/ground_truth/*; and a mapping stream on /mapping/*: scans and drifting "
                    "odometry simulated along the first 30 s of the real KITTI 00 drive.")
    parser.add_argument("--out", type=Path, default=DEFAULT_SAMPLE,
                        help=f"bag directory to create (default {DEFAULT_SAMPLE})")
    parser.add_argument("--storage", choices=tuple(STORAGES), default="mcap",
                        help="rosbag2 storage (default mcap)")


ACTIONS = {"make-sample": add_make_sample_parser}


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bag", help="bag utilities (the sample recording)",
                            description="Bag utilities.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for add in ACTIONS.values():
        add(actions)
    parser.set_defaults(run=run)


def run_make_sample(args: argparse.Namespace) -> int:
    summary = build_sample_bag(args.out, args.storage, SampleConfig())
    size = sum(f.stat().st_size for f in summary.path.rglob("*") if f.is_file())
    print(f"wrote {summary.path} ({args.storage}, {size / 1e6:.1f} MB)")
    width = max(len(topic) for topic in summary.counts)
    for topic, count in sorted(summary.counts.items()):
        print(f"  {topic:<{width}}  {count}")
    return 0


RUNNERS = {"make-sample": run_make_sample}


def run(args: argparse.Namespace) -> int:
    return RUNNERS[args.action](args)
