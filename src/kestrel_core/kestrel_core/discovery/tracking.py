"""Track ids over frames for discovered objects: 2D masks and 3D boxes share one tracker.

Each frame, a similarity matrix between the live tracks and the new observations
(``(T, K)``, values in ``[0, 1]``) is solved as an assignment problem with the Hungarian
method (``scipy.optimize.linear_sum_assignment``); pairs below ``min_similarity`` are left
unmatched. A matched track takes the new observation; an unmatched observation starts a new
track with a fresh id; a track unmatched for more than ``max_missed`` frames ends.

A track is *published* once it has been matched in ``persistence`` frames (counting the
first), which filters out objects that flicker in and out (temporally inconsistent ones).

Similarities:

* :func:`mask_similarity`: ``iou_weight * IoU + (1 - iou_weight) * max(0, cos)`` of the
  masks and of their mean-key descriptors.
* :func:`center_similarity` (3D, in ``boxes``): ``max(0, 1 - distance / max_distance)``
  of box centres.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import scipy.optimize

__all__ = ["TrackerConfig", "TrackedObject", "Tracker", "MaskObservation", "mask_similarity",
           "MaskTracker", "assign"]

S = TypeVar("S")


@dataclass(frozen=True)
class TrackerConfig:
    """Settings of :class:`Tracker`.

    Attributes:
        min_similarity: smallest similarity accepted as a match, in ``[0, 1]``.
        persistence: frames a track must be matched in before it is published (>= 1).
        max_missed: consecutive frames a track may go unmatched before it ends (>= 0).
        iou_weight: weight of the mask IoU against the descriptor cosine (2D masks only).
    """

    min_similarity: float = 0.3
    persistence: int = 3
    max_missed: int = 2
    iou_weight: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_similarity <= 1.0:
            raise ValueError(f"min_similarity must be in [0, 1], got {self.min_similarity}")
        if self.persistence < 1:
            raise ValueError(f"persistence must be at least 1, got {self.persistence}")
        if self.max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {self.max_missed}")
        if not 0.0 <= self.iou_weight <= 1.0:
            raise ValueError(f"iou_weight must be in [0, 1], got {self.iou_weight}")


@dataclass(frozen=True)
class TrackedObject:
    """The track an observation of the current frame belongs to.

    Attributes:
        index: position of the observation in the list given to :meth:`Tracker.update`.
        track_id: id, stable over frames, starting at 1.
        hits: frames the track has been matched in so far.
        published: ``hits >= persistence``.
    """

    index: int
    track_id: int
    hits: int
    published: bool


def assign(similarity: np.ndarray, min_similarity: float) -> list[tuple[int, int]]:
    """Maximum-similarity one-to-one matching of rows to columns.

    Args:
        similarity: ``(T, K)`` values in ``[0, 1]``.
        min_similarity: pairs below it are dropped after the assignment.

    Returns:
        ``(row, column)`` pairs.
    """
    if similarity.size == 0:
        return []
    rows, cols = scipy.optimize.linear_sum_assignment(similarity, maximize=True)
    keep = similarity[rows, cols] >= min_similarity
    return list(zip(rows[keep].tolist(), cols[keep].tolist()))


@dataclass
class _Track(Generic[S]):
    track_id: int
    state: S
    hits: int = 1
    missed: int = 0


class Tracker(Generic[S]):
    """Hungarian tracker over observations of any kind ``S``.

    Args:
        config: matching and persistence settings.
        similarity: ``(tracks' last observations, new observations) -> (T, K)`` array in
            ``[0, 1]``.
    """

    def __init__(self, config: TrackerConfig,
                 similarity: Callable[[Sequence[S], Sequence[S]], np.ndarray]) -> None:
        self.config = config
        self._similarity = similarity
        self._tracks: list[_Track[S]] = []
        self._next_id = 1

    @property
    def live_tracks(self) -> int:
        """Number of tracks currently alive (published or not)."""
        return len(self._tracks)

    def update(self, observations: Sequence[S]) -> list[TrackedObject]:
        """Match one frame's observations; returns one :class:`TrackedObject` per observation,
        in the order given."""
        if self._tracks and observations:
            similarity = np.asarray(self._similarity([t.state for t in self._tracks], observations), float)
            expected = (len(self._tracks), len(observations))
            if similarity.shape != expected:
                raise ValueError(f"similarity must be {expected}, got {similarity.shape}")
            pairs = assign(similarity, self.config.min_similarity)
        else:
            pairs = []
        matched_tracks = {row for row, _ in pairs}
        results: dict[int, _Track[S]] = {}
        for row, col in pairs:
            track = self._tracks[row]
            track.state, track.hits, track.missed = observations[col], track.hits + 1, 0
            results[col] = track
        survivors = [t for i, t in enumerate(self._tracks) if i in matched_tracks]
        for i, track in enumerate(self._tracks):
            if i not in matched_tracks:
                track.missed += 1
                if track.missed <= self.config.max_missed:
                    survivors.append(track)
        for col, observation in enumerate(observations):
            if col not in results:
                track = _Track(self._next_id, observation)
                self._next_id += 1
                survivors.append(track)
                results[col] = track
        self._tracks = survivors
        return [TrackedObject(col, results[col].track_id, results[col].hits,
                              results[col].hits >= self.config.persistence)
                for col in range(len(observations))]


@dataclass(frozen=True)
class MaskObservation:
    """One object mask of a frame.

    Attributes:
        mask: ``(H, W)`` bool, the same resolution in every frame.
        descriptor: ``(D,)`` float feature (e.g. the mask's mean attention key).
    """

    mask: np.ndarray
    descriptor: np.ndarray


def mask_similarity(tracks: Sequence[MaskObservation], observations: Sequence[MaskObservation],
                    iou_weight: float) -> np.ndarray:
    """``(T, K)`` blend of mask IoU and descriptor cosine (negative cosines count as 0)."""
    a = np.stack([t.mask.ravel() for t in tracks]).astype(np.float32)
    b = np.stack([o.mask.ravel() for o in observations]).astype(np.float32)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"masks of different sizes: {tracks[0].mask.shape} vs {observations[0].mask.shape}")
    intersection = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - intersection
    iou = intersection / np.maximum(union, 1.0)
    da = np.stack([t.descriptor for t in tracks]).astype(np.float64)
    db = np.stack([o.descriptor for o in observations]).astype(np.float64)
    da /= np.maximum(np.linalg.norm(da, axis=1, keepdims=True), 1e-12)
    db /= np.maximum(np.linalg.norm(db, axis=1, keepdims=True), 1e-12)
    cosine = np.clip(da @ db.T, 0.0, 1.0)
    return iou_weight * iou + (1.0 - iou_weight) * cosine


class MaskTracker(Tracker[MaskObservation]):
    """:class:`Tracker` of 2D masks with :func:`mask_similarity`."""

    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        super().__init__(config, lambda tracks, obs: mask_similarity(tracks, obs, config.iou_weight))
