"""Teacher flows for distillation, computed once per training pair and cached on disk.

Each pair's teacher (:func:`kestrel_core.flow.learned.consistent_teacher_flows`) takes a few
seconds on a CPU; the cache, one ``.npy`` per distinct pair named by a hash of the two
frames and the teacher's name, makes a second run (a resume, a longer schedule) free. A pair
given several times (e.g. a folder repeated to weight it) is computed once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from kestrel_core.flow.learned import TEACHER_CONFIG, consistent_teacher_flows

__all__ = ["TEACHERS", "cached_teacher_flows"]

#: Teacher methods: name -> function of a pair returning ``(2, 2, H, W)`` NaN-masked flows.
TEACHERS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "coarse_to_fine": lambda first, second: consistent_teacher_flows(first, second, TEACHER_CONFIG, "cpu"),
}


def _pair_key(teacher: str, first: np.ndarray, second: np.ndarray) -> str:
    digest = hashlib.sha1(teacher.encode())
    for image in (first, second):
        digest.update(str(image.shape).encode())
        digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()[:20]


def cached_teacher_flows(pairs: Sequence[tuple[np.ndarray, np.ndarray]], cache: Path,
                         teacher: str = "coarse_to_fine",
                         progress: Callable[[int, int], None] | None = None,
                         ) -> list[np.ndarray]:
    """The teacher flows of every pair, read from ``cache`` or computed and written there.

    Args:
        pairs: ``(first, second)`` images of one size per pair.
        cache: folder of the ``.npy`` files (created if missing).
        teacher: a key of :data:`TEACHERS`.
        progress: optional callable ``(done, total)`` after each pair.

    Returns:
        One ``(2, 2, H, W)`` float16 array per pair: the flow first -> second and second ->
        first, NaN where the teacher's forward-backward check fails.
    """
    if teacher not in TEACHERS:
        raise ValueError(f"unknown teacher {teacher!r}; choose from {sorted(TEACHERS)}")
    cache.mkdir(parents=True, exist_ok=True)
    flows: dict[str, np.ndarray] = {}
    result = []
    for index, (first, second) in enumerate(pairs):
        key = _pair_key(teacher, first, second)
        if key not in flows:
            path = cache / f"{key}.npy"
            if path.is_file():
                flows[key] = np.load(path)
            else:
                with torch.inference_mode():
                    flows[key] = TEACHERS[teacher](first, second).astype(np.float16)
                np.save(path, flows[key])
        result.append(flows[key])
        if progress is not None:
            progress(index + 1, len(pairs))
    return result
