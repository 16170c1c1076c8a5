"""Track ids of masks and boxes over synthetic sequences with known motion."""

from __future__ import annotations

import numpy as np
import pytest

from kestrel_core.discovery import BoxTracker, MaskObservation, MaskTracker, OrientedBox3D, TrackerConfig

H, W = 60, 80


def square(top: int, left: int, size: int = 14) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[top:top + size, left:left + size] = True
    return mask


def observe(mask: np.ndarray, descriptor) -> MaskObservation:
    return MaskObservation(mask, np.asarray(descriptor, float))


def test_ids_persist_while_objects_move_and_swap_order():
    tracker = MaskTracker(TrackerConfig(persistence=3, max_missed=1))
    a, b = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
    ids_a, ids_b, published = [], [], []
    for t in range(8):
        obs = [observe(square(5 + 2 * t, 5 + 3 * t), a), observe(square(40 - t, 60 - 2 * t), b)]
        if t % 2:                                            # the input order must not matter
            obs = obs[::-1]
        results = tracker.update(obs)
        by_desc = {tuple(obs[r.index].descriptor): r for r in results}
        ids_a.append(by_desc[tuple(a)].track_id)
        ids_b.append(by_desc[tuple(b)].track_id)
        published.append(by_desc[tuple(a)].published)
    assert len(set(ids_a)) == 1 and len(set(ids_b)) == 1 and ids_a[0] != ids_b[0]
    assert published == [False, False] + [True] * 6          # published from the 3rd frame


def test_a_lost_track_ends_and_a_returning_object_gets_a_new_id():
    tracker = MaskTracker(TrackerConfig(persistence=1, max_missed=1))
    first = tracker.update([observe(square(10, 10), [1, 0])])[0].track_id
    tracker.update([])
    assert tracker.live_tracks == 1                          # missed once: still alive
    tracker.update([])
    assert tracker.live_tracks == 0                          # missed twice: ended
    again = tracker.update([observe(square(10, 10), [1, 0])])[0]
    assert again.track_id != first and again.hits == 1


def test_a_new_dissimilar_object_does_not_steal_an_id():
    tracker = MaskTracker(TrackerConfig(min_similarity=0.4, persistence=1))
    old = tracker.update([observe(square(5, 5), [1, 0])])[0].track_id
    new = tracker.update([observe(square(40, 60), [0, 1])])[0]
    assert new.track_id != old


def test_box_tracker_filters_flickering_clusters():
    tracker = BoxTracker(TrackerConfig(persistence=3, max_missed=0), max_distance=1.0)
    steady = lambda t: OrientedBox3D(np.array([5.0 + 0.2 * t, 0.0, 0.5]), np.ones(3), 0.0)
    published = set()
    for t in range(6):
        boxes = [steady(t)]
        if t in (1, 3, 5):                                   # clutter at a new place every time
            boxes.append(OrientedBox3D(np.array([-5.0, 10.0 * t, 0.5]), np.ones(3), 0.0))
        published |= {r.track_id for r in tracker.update(boxes) if r.published}
    assert published == {1}


def test_config_is_validated():
    with pytest.raises(ValueError, match="persistence"):
        TrackerConfig(persistence=0)
