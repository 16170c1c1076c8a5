"""The ``kestrel`` command line: offline runs of the core, the demo and the benchmarks.

Every failure ends with a non-zero exit and one line on stderr, ``kestrel: error: ...``.
"""

from __future__ import annotations

import argparse
import sys

from kestrel_tools.commands import bag, bench, bench_graph, demo, flow, replay, stereo, train
from kestrel_tools.commands import eval as eval_command  # not to hide the builtin
from kestrel_tools.commands import features
from kestrel_tools.commands import discover
from kestrel_tools.commands import complete_depth

COMMANDS = (stereo, flow, demo, bench, eval_command, replay, train, bag, bench_graph, features, discover,
            complete_depth)


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error on a single line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="kestrel", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError, RuntimeError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        print(f"kestrel {args.command}: error: {reason}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
