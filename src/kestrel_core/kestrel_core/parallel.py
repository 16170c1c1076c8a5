"""Coarse-grained CPU parallelism: independent slices of a volume (or independent jobs)
on worker threads, each running torch ops with one intra-op thread.

Why not torch's own intra-op threads? SGM (:mod:`kestrel_core.stereo`), the first user,
runs thousands of small ops per frame (each scan step is a handful of ops on one image row
or column of costs). With intra-op
threads every op is a parallel region whose threads meet at a barrier, so a frame has
thousands of barriers; when the cores are shared with other processes, one descheduled
thread stalls each of them and a frame can take seconds instead of a fraction of one.
Independent slices (rows for the horizontal paths, columns for the vertical ones) need
one join per scan instead. torch releases the GIL inside its kernels, so the threads
overlap except for the Python dispatch of each op.

In torch's OpenMP backend the thread count is a per-thread setting, fixed for a thread
the first time it asks for it (from a process-wide default that
``torch.set_num_threads`` also updates). So each worker first asks (settling its
count), then sets one thread: later changes of the default cannot reach it, and the
caller's own count is untouched. The caller puts the default back once the workers
have finished.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import torch

__all__ = ["worker_count", "split_range", "run_parallel", "serial_ops", "torch_threads"]


def worker_count(device: torch.device, length: int, threads: int | None = None, minimum_part: int = 32) -> int:
    """Workers to use for ``length`` independent lines on ``device``: on a CPU,
    ``threads`` (default: the caller's torch intra-op thread count), at most one per
    ``minimum_part`` lines; 1 on other devices (their kernels are asynchronous; threads
    would only add contention)."""
    if device.type != "cpu":
        return 1
    budget = threads if threads is not None else torch.get_num_threads()
    return max(1, min(budget, length // minimum_part))


def split_range(length: int, parts: int) -> list[tuple[int, int]]:
    """``[0, length)`` cut into ``parts`` contiguous ``(start, stop)`` ranges whose sizes
    differ by at most one (empty ranges are dropped)."""
    bounds = [length * i // parts for i in range(parts + 1)]
    return [(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]


def run_parallel(tasks: Sequence[Callable[[], None]]) -> None:
    """Run ``tasks`` concurrently and wait for all of them; the first exception raised
    by a task is re-raised here.

    A single task runs on the calling thread. Otherwise each task runs on its own
    thread with one torch intra-op thread, in the caller's inference mode.
    """
    if len(tasks) == 1:
        tasks[0]()
        return
    inference = torch.is_inference_mode_enabled()
    threads = torch.get_num_threads()

    def call(task: Callable[[], None]) -> None:
        torch.get_num_threads()  # settle this thread's count before changing it
        torch.set_num_threads(1)
        with torch.inference_mode(inference):
            task()

    try:
        with ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="kestrel-worker") as pool:
            futures = [pool.submit(call, task) for task in tasks]
            for future in futures:
                future.result()
    finally:
        torch.set_num_threads(threads)  # the process-wide default, for threads started later


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` torch intra-op threads, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def serial_ops(device: torch.device) -> Iterator[int]:
    """Yield the caller's torch intra-op thread count (the budget for
    :func:`worker_count`); on a CPU the calling thread meanwhile runs its own torch ops
    with one intra-op thread (its count is put back on exit), so the small whole-image
    ops around the parallel stages (input conversion, refinement) add no thread
    barriers either."""
    threads = torch.get_num_threads()
    if device.type != "cpu":
        yield threads
        return
    with torch_threads(1):
        yield threads
