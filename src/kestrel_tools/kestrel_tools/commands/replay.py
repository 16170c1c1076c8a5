"""``kestrel replay BAG``: publish a bag into the running graph, optionally recording outputs.

The ROS environment is the caller's (``ROS_DOMAIN_ID`` and friends). rclpy is imported only
when the command runs, so the rest of the command line works without a ROS graph.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from kestrel_tools.bags import open_bag
from kestrel_tools.bags.writer import STORAGES

RECORDER_WAIT_S = 10.0  # at most, for the recorder in this process to match the publishers
FLUSH_TIMEOUT_S = 10.0  # at most, for reliable subscribers to acknowledge the last messages


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "replay", help="publish a rosbag2 bag into the ROS graph, record outputs",
        description="Publish a bag's topics (sqlite3 or MCAP) over DDS at their recorded pace, "
                    "with /clock; optionally record topics to a new bag meanwhile.")
    parser.add_argument("bag", type=Path, help="bag directory, .mcap or .db3 file")
    parser.add_argument("--rate", type=float, default=1.0,
                        help="playback speed, bag seconds per wall second (default 1.0)")
    parser.add_argument("--loop", action="store_true", help="start again at the end until Ctrl-C")
    parser.add_argument("--topics", nargs="+", metavar="T", help="bag topics to play (default all)")
    parser.add_argument("--remap", action="append", default=[], metavar="OLD:=NEW",
                        help="publish bag topic OLD as NEW (repeatable)")
    parser.add_argument("--clock", action=argparse.BooleanOptionalAction, default=True,
                        help="publish the bag time on /clock (default on)")
    parser.add_argument("--clock-rate-hz", type=float, default=100.0,
                        help="/clock ticks per wall second; 0 publishes it with each message")
    parser.add_argument("--qos-depth", type=int, default=100,
                        help="history depth of the reliable publishers (default 100)")
    parser.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="S",
                        help="wait at most S seconds for a subscriber on every played topic "
                             "(and, when recording, for a publisher of every recorded topic)")
    parser.add_argument("--delay", type=float, default=0.5, metavar="S",
                        help="seconds between finding the subscribers and the first message, so "
                             "they also finish discovering the player (DDS discovery is not "
                             "symmetric: a subscriber seen here may not see the player yet)")
    parser.add_argument("--record", type=Path, metavar="OUT_BAG", help="record to this new bag")
    parser.add_argument("--record-topics", nargs="+", metavar="T", help="topics to record")
    parser.add_argument("--record-storage", choices=tuple(STORAGES), default="sqlite3")
    parser.add_argument("--record-idle", type=float, default=2.0, metavar="S",
                        help="after the bag ends, record until S seconds pass without a message")
    parser.set_defaults(run=run)


def _check_arguments(args: argparse.Namespace) -> None:
    if bool(args.record) != bool(args.record_topics):
        raise ValueError("--record and --record-topics go together")
    if args.record is not None and args.record.exists():
        raise ValueError(f"--record {args.record} exists already; a bag is never overwritten")
    if args.wait_for_subscribers < 0 or args.record_idle < 0 or args.delay < 0:
        raise ValueError("--wait-for-subscribers, --record-idle and --delay must be >= 0")


def run(args: argparse.Namespace) -> int:
    from kestrel_tools.replay.player import PlayOptions, choose_topics, parse_remaps

    _check_arguments(args)
    options = PlayOptions(rate=args.rate, loop=args.loop,
                          topics=tuple(args.topics) if args.topics else None,
                          remaps=parse_remaps(args.remap), qos_depth=args.qos_depth,
                          clock=args.clock, clock_rate_hz=args.clock_rate_hz)
    with open_bag(args.bag) as bag:
        choose_topics(bag, options)  # a bad selection fails before any ROS set-up
        return _replay(bag, options, args)


def _replay(bag, options, args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from kestrel_tools.replay.player import BagPlayer
    from kestrel_tools.replay.recorder import BagRecorder

    # No command-line arguments for rcl (it would read OLD:=NEW as its own remap rule), and no
    # rclpy signal handler: Ctrl-C raises KeyboardInterrupt, which ends the replay cleanly.
    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
    nodes, recorder, executor, spinner = [], None, None, None
    interrupted = False
    try:
        node = rclpy.create_node("kestrel_replay")
        nodes.append(node)
        player = BagPlayer(node, bag, options)
        if args.record is not None:
            record_node = rclpy.create_node("kestrel_replay_recorder")
            nodes.append(record_node)
            recorder = BagRecorder(record_node, args.record, args.record_topics,
                                   args.record_storage, qos_depth=options.qos_depth)
            executor = SingleThreadedExecutor()
            executor.add_node(record_node)
            spinner = threading.Thread(target=executor.spin, name="kestrel-record", daemon=True)
            spinner.start()
        try:
            if args.wait_for_subscribers > 0 and \
                    not player.wait_for_subscribers(args.wait_for_subscribers):
                print(f"kestrel replay: warning: no subscriber after {args.wait_for_subscribers} s "
                      f"on {', '.join(player.unsubscribed_topics())}; playing anyway",
                      file=sys.stderr)
            if recorder is not None:
                _wait_for_recorder(player, recorder, max(args.wait_for_subscribers,
                                                         RECORDER_WAIT_S),
                                   args.wait_for_subscribers)
            time.sleep(args.delay)
            player.play()
            unacknowledged = player.flush(FLUSH_TIMEOUT_S)
            if unacknowledged:
                print(f"kestrel replay: warning: subscribers of {', '.join(unacknowledged)} "
                      f"did not acknowledge every message within {FLUSH_TIMEOUT_S:.0f} s",
                      file=sys.stderr)
            if recorder is not None:
                played = {t: n for t, n in player.stats.published.items() if t in recorder.topics}
                short = recorder.wait_for_counts(played, FLUSH_TIMEOUT_S)
                if short:
                    print(f"kestrel replay: warning: the recorder got fewer messages than were "
                          f"played on {', '.join(short)}", file=sys.stderr)
                recorder.wait_idle(args.record_idle)
        except KeyboardInterrupt:
            interrupted = True
        _stop(executor, spinner)
        executor = None
        if recorder is not None:
            recorder.close()
        _print_summary(args.bag, player, recorder, interrupted)
    finally:
        _stop(executor, spinner)
        for each in nodes:
            each.destroy_node()
        rclpy.try_shutdown()
    if player.stats.error is not None:
        raise player.stats.error
    return 0


def _wait_for_recorder(player, recorder, timeout: float, discover_s: float) -> None:
    """Before the first message: let the recorder subscribe to the played topics it records,
    and (for at most ``discover_s``) find a publisher of each other topic it records."""
    recorded = [t for t in player.output_topics if t in recorder.topics]
    if recorded and not player.wait_for_subscribers(timeout, recorded):
        print(f"kestrel replay: warning: the recorder did not subscribe to "
              f"{', '.join(player.unsubscribed_topics())} within {timeout} s", file=sys.stderr)
    if discover_s > 0 and not recorder.wait_discovered(discover_s):
        print(f"kestrel replay: warning: no publisher of {', '.join(recorder.pending)} after "
              f"{discover_s} s; recording it if one appears", file=sys.stderr)


def _stop(executor, spinner: threading.Thread | None) -> None:
    """Stop the recording executor and its thread (nothing when there is none)."""
    if executor is not None:
        executor.shutdown()
        spinner.join()


def _print_summary(bag_path: Path, player, recorder, interrupted: bool) -> None:
    stats = player.stats
    per_second = stats.total / stats.wall_s if stats.wall_s > 0 else 0.0
    ending = "interrupted" if interrupted else "damaged" if stats.error else "done"
    print(f"played {bag_path}: {stats.total} messages in {stats.wall_s:.2f} s, "
          f"{stats.passes} pass(es), bag span {stats.bag_s:.2f} s, effective rate "
          f"{stats.effective_rate:.2f}x ({per_second:.0f} msg/s), /clock ticks "
          f"{stats.clock_ticks} [{ending}]")
    width = max((len(t) for t in player.output_topics), default=0)
    for topic in player.output_topics:
        print(f"  {topic:<{width}}  {stats.published[topic]}")
    if recorder is None:
        return
    print(f"recorded {recorder.path}: {sum(recorder.counts.values())} messages")
    width = max(len(t) for t in recorder.topics)
    for topic in recorder.topics:
        note = f"  (not recorded: {recorder.skipped[topic]})" if topic in recorder.skipped \
            else "" if topic in recorder.types else "  (no publisher seen)"
        print(f"  {topic:<{width}}  {recorder.counts[topic]}{note}")
