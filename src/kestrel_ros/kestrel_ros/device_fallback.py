"""Run a frame on the node's device, and on the CPU when CUDA runs out of memory."""

from __future__ import annotations

from typing import Callable, TypeVar

import torch

from kestrel_ros.diagnostics import DiagnosticsReporter

T = TypeVar("T")


class CpuFallback:
    """Calls ``compute(device)``; after a CUDA out-of-memory error, ``compute("cpu")``.

    Each fallback is logged as a warning and counted as ``cuda_oom_cpu_fallbacks`` on
    ``/diagnostics``; the next frame tries the configured device again.
    """

    def __init__(self, device: torch.device, diagnostics: DiagnosticsReporter, logger) -> None:
        self.device = device
        self._diagnostics = diagnostics
        self._logger = logger
        self.count = 0

    def __call__(self, compute: Callable[[torch.device], T]) -> T:
        try:
            return compute(self.device)
        except torch.cuda.OutOfMemoryError:
            self.count += 1
            self._diagnostics.extra["cuda_oom_cpu_fallbacks"] = str(self.count)
            self._logger.warning("CUDA out of memory: this frame is computed on the CPU")
            torch.cuda.empty_cache()
            return compute(torch.device("cpu"))
