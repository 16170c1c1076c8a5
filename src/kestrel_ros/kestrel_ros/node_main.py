"""The shared ``main()`` of every Kestrel node: init, construct, spin, clean shutdown."""

from __future__ import annotations

import sys
from typing import Callable

import rclpy
import rclpy.exceptions
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node


def run_node(factory: Callable[[], Node], name: str, args: list[str] | None = None) -> int:
    """Spin the node made by ``factory`` until shutdown.

    A node that cannot start (an invalid parameter, an unreadable model) exits with status 2
    and a one-line reason on stderr. Two executor threads let ``/diagnostics`` keep
    publishing while a long frame is being processed.
    """
    rclpy.init(args=args)
    try:
        node = factory()
    except (ValueError, OSError, rclpy.exceptions.ParameterException) as err:
        print(f"{name}: cannot start: {err}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
