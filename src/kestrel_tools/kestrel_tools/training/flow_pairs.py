"""Frame pairs for unsupervised flow training, and random crops of them as batches."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from kestrel_tools.training.frames import FrameSource, iter_frames

__all__ = ["consecutive_pairs", "folder_pairs", "PairSampler"]


def consecutive_pairs(sources: Sequence[FrameSource], gap: int, *, stride: int = 1,
                      max_frames: int | None = None, max_side: int | None = None,
                      ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pairs ``(frame t, frame t + gap)`` of each source (recordings are not mixed)."""
    if gap < 1:
        raise ValueError(f"frame gap must be at least 1, got {gap}")
    pairs = []
    for source in sources:
        frames = list(iter_frames(source, stride=stride, max_frames=max_frames, max_side=max_side))
        pairs += [(frames[i], frames[i + gap]) for i in range(len(frames) - gap)]
    return pairs


def folder_pairs(folder: Path, max_side: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """A folder whose images, in name order, go two by two (e.g. ``x_left``, ``x_right``)."""
    frames = list(iter_frames(FrameSource("images", folder), max_side=max_side))
    if len(frames) % 2:
        raise ValueError(f"{folder}: {len(frames)} images cannot be taken two by two")
    pairs = list(zip(frames[0::2], frames[1::2]))
    for first, second in pairs:
        if first.shape != second.shape:
            raise ValueError(f"{folder}: a pair differs in size, {first.shape} and {second.shape}")
    return pairs


class PairSampler:
    """Random batches of equally sized crops of frame pairs, with flips and order swaps.

    Each batch element picks a pair, a crop window (the same in both frames), a horizontal
    flip and, half of the time, swaps the frames (so both motion directions are seen).
    Frames smaller than the crop are skipped.

    With ``teachers`` (one ``(2, 2, H, W)`` array per pair: the flow first -> second and
    second -> first, NaN where untrusted, see
    :func:`kestrel_tools.training.flow_teacher.cached_teacher_flows`),
    :meth:`teacher_batch` also returns each element's teacher flow, cropped, flipped and
    swapped like its frames.
    """

    def __init__(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]], crop: tuple[int, int],
                 seed: int = 0, teachers: Sequence[np.ndarray] | None = None) -> None:
        self.crop = crop
        if teachers is not None:
            if len(teachers) != len(pairs):
                raise ValueError(f"{len(teachers)} teacher flows for {len(pairs)} pairs")
            for (first, _), teacher in zip(pairs, teachers):
                if teacher.shape != (2, 2, *first.shape[:2]):
                    raise ValueError(f"teacher flow {teacher.shape} does not fit a pair of "
                                     f"{first.shape[:2]}; expected (2, 2, H, W)")
        big_enough = [p[0].shape[0] >= crop[0] and p[0].shape[1] >= crop[1] for p in pairs]
        self.pairs = [p for p, keep in zip(pairs, big_enough) if keep]
        self.teachers = (None if teachers is None
                         else [t for t, keep in zip(teachers, big_enough) if keep])
        if not self.pairs:
            raise ValueError(f"no frame pair is at least {crop[0]}x{crop[1]} (rows x columns)")
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.pairs)

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Two ``(size, 3, crop_h, crop_w)`` float32 tensors in [0, 1]."""
        firsts, seconds, _ = self._draw(size, with_teacher=False)
        return _stack(firsts), _stack(seconds)

    def teacher_batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """As :meth:`batch`, plus the ``(size, 2, 2, crop_h, crop_w)`` float32 teacher flows
        of each element: ``[:, 0]`` from the first crop to the second, ``[:, 1]`` back (NaN
        where untrusted)."""
        if self.teachers is None:
            raise ValueError("this sampler was made without teacher flows")
        firsts, seconds, teachers = self._draw(size, with_teacher=True)
        flows = np.stack([np.ascontiguousarray(t) for t in teachers]).astype(np.float32)
        return _stack(firsts), _stack(seconds), torch.from_numpy(flows)

    def _draw(self, size: int, with_teacher: bool,
              ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        firsts, seconds, teachers = [], [], []
        crop_h, crop_w = self.crop
        for _ in range(size):
            index = self.rng.integers(len(self.pairs))
            first, second = self.pairs[index]
            top = self.rng.integers(first.shape[0] - crop_h + 1)
            left = self.rng.integers(first.shape[1] - crop_w + 1)
            window = (slice(top, top + crop_h), slice(left, left + crop_w))
            a, b = _rgb(first[window]), _rgb(second[window])
            # (direction, (u, v), rows, cols); a flip mirrors the field and negates u.
            teacher = self.teachers[index][(slice(None), slice(None), *window)] if with_teacher else None
            if self.rng.random() < 0.5:
                a, b = a[:, ::-1], b[:, ::-1]
                if teacher is not None:
                    teacher = teacher[..., ::-1] * np.array([-1, 1], teacher.dtype)[None, :, None, None]
            if self.rng.random() < 0.5:
                a, b = b, a
                if teacher is not None:
                    teacher = teacher[::-1]
            firsts.append(a)
            seconds.append(b)
            if teacher is not None:
                teachers.append(teacher)
        return firsts, seconds, teachers


def _rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image


def _stack(images: list[np.ndarray]) -> torch.Tensor:
    array = np.stack([np.ascontiguousarray(i) for i in images]).astype(np.float32) / 255.0
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()
