"""CPU and memory of a process, sampled in a background thread with psutil."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import psutil

BYTES_PER_MB = 1024 * 1024


@dataclass(frozen=True)
class ResourceSummary:
    """Attributes:
        cpu_percent_mean, cpu_percent_max: CPU use of the process in percent of one core
            (above 100 with several busy threads); NaN without samples.
        rss_mb_mean, rss_mb_max: resident memory in MiB; NaN without samples.
        samples: number of samples.
    """

    cpu_percent_mean: float
    cpu_percent_max: float
    rss_mb_mean: float
    rss_mb_max: float
    samples: int

    @classmethod
    def of(cls, cpu_percent: list[float], rss_bytes: list[int]) -> ResourceSummary:
        if not cpu_percent:
            nan = float("nan")
            return cls(nan, nan, nan, nan, 0)
        cpu = np.asarray(cpu_percent, dtype=np.float64)
        rss = np.asarray(rss_bytes, dtype=np.float64) / BYTES_PER_MB
        return cls(float(cpu.mean()), float(cpu.max()), float(rss.mean()), float(rss.max()),
                   len(cpu_percent))


class ResourceSampler:
    """Samples a process every ``period`` seconds between :meth:`start` and :meth:`stop`.

    CPU is measured over each sampling interval (psutil ``cpu_percent`` since the previous
    call), so the first reading after ``start`` covers one full period.
    """

    def __init__(self, pid: int, period: float = 0.25) -> None:
        if period <= 0:
            raise ValueError(f"period must be positive, got {period}")
        self._process = psutil.Process(pid)
        self._period = period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu: list[float] = []
        self._rss: list[int] = []

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the sampler is running already")
        self._cpu, self._rss = [], []
        self._stop.clear()
        self._process.cpu_percent(None)  # the reference point of the first interval
        self._thread = threading.Thread(target=self._run, name="kestrel-resource-sampler",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            try:
                cpu = self._process.cpu_percent(None)
                rss = self._process.memory_info().rss
            except psutil.Error:
                return  # the process ended; keep what was sampled
            self._cpu.append(cpu)
            self._rss.append(rss)

    def stop(self) -> ResourceSummary:
        """Stop sampling; the summary of the samples taken since :meth:`start`."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        return ResourceSummary.of(self._cpu, self._rss)
