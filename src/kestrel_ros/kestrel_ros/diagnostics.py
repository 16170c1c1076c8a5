"""Publishes a node's :class:`HealthStats` on ``/diagnostics`` and logs bad input, throttled."""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from kestrel_ros.health import HealthStats

DIAGNOSTICS_TOPIC = "/diagnostics"
# Skip causes that are not bad input, logged as warnings rather than errors: a transform not
# yet in TF (expected while a node starts) and an image stream that changed its size or
# encoding (the node starts again on the new stream).
WARNING_CAUSES = frozenset({"missing_transform", "stream_reset"})


class DiagnosticsReporter:
    """Owns a node's health counters and publishes them periodically.

    Usage: call :meth:`input_received` per input, :meth:`frame_processed` per output,
    and :meth:`bad_input` for every skipped frame; a timer publishes the status.
    """

    def __init__(
        self,
        node: Node,
        task: str,
        period_s: float = 1.0,
        stats: HealthStats | None = None,
    ) -> None:
        self._node = node
        self._task = task
        self.stats = stats or HealthStats()
        self.hardware_id = ""
        self.extra: dict[str, str] = {}
        self._publisher = node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self._timer = node.create_timer(period_s, self.publish)

    def input_received(self) -> None:
        self.stats.input_received()

    def frame_processed(self, seconds: float) -> None:
        self.stats.frame_processed(seconds)

    def bad_input(self, cause: str, detail: str) -> None:
        """Count a skipped frame and log it (once per cause per throttle period)."""
        line = self.stats.frame_dropped(cause, detail)
        if line is not None:
            self._node.get_logger().error(line)

    def skipped(self, bad: BadInput) -> None:
        """Count a frame skipped for ``bad`` and log it, throttled per cause: a warning for
        the causes of :data:`WARNING_CAUSES`, an error for any other bad input."""
        line = self.stats.frame_dropped(bad.cause, bad.detail)
        if line is None:
            return
        # Two call sites: rclpy fixes the severity of each logging call site at its first call.
        if bad.cause in WARNING_CAUSES:
            self._node.get_logger().warning(line)
        else:
            self._node.get_logger().error(line)

    def status(self) -> DiagnosticStatus:
        active = self.stats.active_causes()
        if active:
            level = DiagnosticStatus.WARN
            message = "dropping frames: " + ", ".join(
                f"{cause} ({self.stats.causes[cause].last_detail})" for cause in active
            )
        elif self.stats.processed == 0:
            level, message = DiagnosticStatus.OK, "waiting for input"
        else:
            level, message = DiagnosticStatus.OK, "ok"
        pairs = self.stats.key_values() + sorted(self.extra.items())
        return DiagnosticStatus(
            level=level,
            name=f"{self._node.get_fully_qualified_name()}: {self._task}",
            message=message[:500],
            hardware_id=self.hardware_id,
            values=[KeyValue(key=key, value=value) for key, value in pairs],
        )

    def publish(self) -> None:
        array = DiagnosticArray()
        array.header.stamp = self._node.get_clock().now().to_msg()
        array.status = [self.status()]
        self._publisher.publish(array)


class BadInput(Exception):
    """Raised while preparing a frame that must be skipped.

    Attributes:
        cause: a short stable key (``size_mismatch``, ``unsupported_encoding``, ...),
            used for throttling and as the diagnostics counter name.
        detail: a human-readable sentence with the offending values.
    """

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(f"{cause}: {detail}")
        self.cause = cause
        self.detail = detail
