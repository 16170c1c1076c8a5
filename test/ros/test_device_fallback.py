"""CUDA out-of-memory falls back to the CPU for that frame, counted and logged."""

from types import SimpleNamespace

import torch

from kestrel_ros.device_fallback import CpuFallback


class Logger:
    def __init__(self):
        self.warnings = []

    def warning(self, line):
        self.warnings.append(line)


def test_out_of_memory_reruns_on_the_cpu_and_counts_it():
    diagnostics, logger = SimpleNamespace(extra={}), Logger()
    fallback = CpuFallback(torch.device("cuda", 0), diagnostics, logger)

    def compute(device):
        if device.type == "cuda":
            raise torch.cuda.OutOfMemoryError("out of memory")
        return torch.arange(3, device=device) * 2

    for expected_count in (1, 2):
        assert fallback(compute).tolist() == [0, 2, 4]
        assert diagnostics.extra["cuda_oom_cpu_fallbacks"] == str(expected_count)
    assert len(logger.warnings) == 2 and "CPU" in logger.warnings[0]


def test_no_fallback_when_the_device_copes():
    diagnostics, logger = SimpleNamespace(extra={}), Logger()
    fallback = CpuFallback(torch.device("cpu"), diagnostics, logger)
    assert fallback(lambda device: device.type) == "cpu"
    assert fallback.count == 0 and diagnostics.extra == {} and logger.warnings == []
