"""Load policy of nodes whose frames take long: process one at a time, drop the rest.

A frame that arrives while the previous one is still being processed is dropped at once and
counted on ``/diagnostics`` as ``busy`` (logged once per throttle period), so nothing queues
without bound and the node always works on a recent frame.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from kestrel_ros.diagnostics import DiagnosticsReporter

BUSY_CAUSE = "busy"


class DropWhenBusy:
    """``with gate.frame() as admitted:`` admits one frame at a time.

    ``admitted`` is False (and the drop is counted) when another frame holds the gate.
    """

    def __init__(self, diagnostics: DiagnosticsReporter, logger) -> None:
        self._lock = threading.Lock()
        self._diagnostics = diagnostics
        self._logger = logger

    @contextmanager
    def frame(self) -> Iterator[bool]:
        if not self._lock.acquire(blocking=False):
            line = self._diagnostics.stats.frame_dropped(
                BUSY_CAUSE, "a frame arrived while the previous one was being processed")
            if line is not None:
                self._logger.info(line)
            yield False
            return
        try:
            yield True
        finally:
            self._lock.release()
