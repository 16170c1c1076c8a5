"""``kestrel train <task> ...``: self-supervised training from the robot's own recordings.

Each task is a module ``kestrel_tools.commands.train_<task>`` whose ``add_parser(tasks)`` adds
its sub-command and sets ``run``; ``TASKS`` lists them. Tasks read frames through
``kestrel_tools.training``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from kestrel_tools.commands import train_depth_completion, train_discovery, train_flow, train_ssl

TASKS: dict[str, Callable[[argparse._SubParsersAction], None]] = {
    "flow": train_flow.add_parser,
    "ssl": train_ssl.add_parser,
    "depth-completion": train_depth_completion.add_parser,
    "discovery": train_discovery.add_parser,
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="train a model self-supervised from recordings",
                            description="Train a model without labels from videos, rosbag2 "
                                        "image topics or image folders.")
    tasks = parser.add_subparsers(dest="task", required=True, metavar="TASK")
    for add in TASKS.values():
        add(tasks)
