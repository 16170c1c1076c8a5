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
    """

    def __init__(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]], crop: tuple[int, int],
                 seed: int = 0) -> None:
        self.crop = crop
        self.pairs = [p for p in pairs if p[0].shape[0] >= crop[0] and p[0].shape[1] >= crop[1]]
        if not self.pairs:
            raise ValueError(f"no frame pair is at least {crop[0]}x{crop[1]} (rows x columns)")
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.pairs)

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Two ``(size, 3, crop_h, crop_w)`` float32 tensors in [0, 1]."""
        firsts, seconds = [], []
        crop_h, crop_w = self.crop
        for _ in range(size):
            first, second = self.pairs[self.rng.integers(len(self.pairs))]
            top = self.rng.integers(first.shape[0] - crop_h + 1)
            left = self.rng.integers(first.shape[1] - crop_w + 1)
            window = (slice(top, top + crop_h), slice(left, left + crop_w))
            a, b = _rgb(first[window]), _rgb(second[window])
            if self.rng.random() < 0.5:
                a, b = a[:, ::-1], b[:, ::-1]
            if self.rng.random() < 0.5:
                a, b = b, a
            firsts.append(a)
            seconds.append(b)
        return _stack(firsts), _stack(seconds)


def _rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image


def _stack(images: list[np.ndarray]) -> torch.Tensor:
    array = np.stack([np.ascontiguousarray(i) for i in images]).astype(np.float32) / 255.0
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()
