"""A stand-in for ``tf2_ros.Buffer``: a time-stamped transform tree with interpolation.

Used only where ``tf2_ros`` cannot be imported (:mod:`kestrel_ros.compat.tf` chooses). The
interface follows ``tf2_ros.Buffer``: ``set_transform``/``set_transform_static`` store
``geometry_msgs/TransformStamped`` messages, ``lookup_transform(target, source, time,
timeout)`` returns the ``TransformStamped`` that maps points from ``source`` into ``target``.

Semantics (as in tf2):

- Each frame has one parent; a stored transform ``parent <- child`` maps child coordinates
  into the parent frame. A lookup walks both frames up to their common ancestor.
- Static transforms hold at every time. Dynamic ones are kept for ``cache_time`` seconds
  behind the newest sample of that frame and interpolated between the two samples around the
  query time (translation linearly, rotation by slerp); a query outside the stored interval
  raises :class:`ExtrapolationException`.
- ``time`` zero means "the latest time at which the whole chain is known".
- A positive ``timeout`` waits (wall clock) for the transform to become available; that needs
  the buffer to be filled from another thread (e.g. a listener spun by another executor).

Simplification: a frame that is re-parented drops its history and starts again.
"""

from __future__ import annotations

import threading
import time as wall_time
from dataclasses import dataclass
from typing import Any

import numpy as np
from geometry_msgs.msg import TransformStamped
from scipy.spatial.transform import Rotation


class TransformException(Exception):
    """Base of the lookup errors (like ``tf2.TransformException``)."""


class LookupException(TransformException):
    """A frame is not in the buffer."""


class ConnectivityException(TransformException):
    """Both frames exist but lie in different trees."""


class ExtrapolationException(TransformException):
    """The query time lies outside the stored interval of a link of the chain."""


class InvalidArgumentException(TransformException):
    """A transform to store is malformed (empty frame id, self-parent, non-finite values)."""


def stamp_to_ns(stamp: Any) -> int:
    """Nanoseconds of an ``rclpy.time.Time``, a ``builtin_interfaces/Time`` or an int."""
    if isinstance(stamp, int):
        return stamp
    if hasattr(stamp, "nanoseconds"):
        return int(stamp.nanoseconds)
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def duration_to_seconds(duration: Any) -> float:
    """Seconds of an ``rclpy.duration.Duration``, a ``builtin_interfaces/Duration`` or a float."""
    if duration is None:
        return 0.0
    if isinstance(duration, (int, float)):
        return float(duration)
    if hasattr(duration, "nanoseconds"):
        return duration.nanoseconds * 1e-9
    return int(duration.sec) + int(duration.nanosec) * 1e-9


@dataclass(frozen=True)
class RigidTransform:
    """A rigid transform: ``p_parent = rotation.apply(p_child) + translation``."""

    translation: np.ndarray  # (3,)
    rotation: Rotation

    def __matmul__(self, other: RigidTransform) -> RigidTransform:
        return RigidTransform(
            self.rotation.apply(other.translation) + self.translation,
            self.rotation * other.rotation,
        )

    def inverse(self) -> RigidTransform:
        inverse_rotation = self.rotation.inv()
        return RigidTransform(-inverse_rotation.apply(self.translation), inverse_rotation)

    @staticmethod
    def identity() -> RigidTransform:
        return RigidTransform(np.zeros(3), Rotation.identity())

    @staticmethod
    def interpolate(first: RigidTransform, second: RigidTransform, ratio: float) -> RigidTransform:
        """Linear interpolation of the translation, slerp of the rotation; ``ratio`` in [0, 1]."""
        relative = (first.rotation.inv() * second.rotation).as_rotvec()
        return RigidTransform(
            (1.0 - ratio) * first.translation + ratio * second.translation,
            first.rotation * Rotation.from_rotvec(ratio * relative),
        )


def message_to_rigid(msg: TransformStamped) -> RigidTransform:
    """The ``RigidTransform`` of a ``TransformStamped``; raises on non-finite or zero quaternions."""
    t, q = msg.transform.translation, msg.transform.rotation
    translation = np.array([t.x, t.y, t.z], dtype=np.float64)
    quaternion = np.array([q.x, q.y, q.z, q.w], dtype=np.float64)
    if not (np.isfinite(translation).all() and np.isfinite(quaternion).all()):
        raise InvalidArgumentException(f"non-finite transform {msg.header.frame_id} <- {msg.child_frame_id}")
    if np.linalg.norm(quaternion) < 1e-9:
        raise InvalidArgumentException(f"zero quaternion {msg.header.frame_id} <- {msg.child_frame_id}")
    return RigidTransform(translation, Rotation.from_quat(quaternion))


def rigid_to_message(rigid: RigidTransform, target: str, source: str, stamp_ns: int) -> TransformStamped:
    """A ``TransformStamped`` (``target <- source``) for ``rigid`` at ``stamp_ns``."""
    msg = TransformStamped()
    msg.header.frame_id = target
    msg.child_frame_id = source
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    x, y, z = (float(v) for v in rigid.translation)
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = x, y, z
    qx, qy, qz, qw = (float(v) for v in rigid.rotation.as_quat())
    rotation = msg.transform.rotation
    rotation.x, rotation.y, rotation.z, rotation.w = qx, qy, qz, qw
    return msg


class _FrameLink:
    """The history of one ``parent <- child`` link: one static value or timed samples."""

    def __init__(self, parent: str, static: bool) -> None:
        self.parent = parent
        self.static = static
        self.stamps: list[int] = []
        self.values: list[RigidTransform] = []

    def insert(self, stamp_ns: int, value: RigidTransform, cache_ns: int) -> None:
        if self.static:
            self.stamps, self.values = [stamp_ns], [value]
            return
        index = int(np.searchsorted(self.stamps, stamp_ns))
        if index < len(self.stamps) and self.stamps[index] == stamp_ns:
            self.values[index] = value
        else:
            self.stamps.insert(index, stamp_ns)
            self.values.insert(index, value)
        first_kept = int(np.searchsorted(self.stamps, self.stamps[-1] - cache_ns))
        del self.stamps[:first_kept], self.values[:first_kept]

    def latest_ns(self) -> int | None:
        """The newest stamp, or None for static links (valid at every time)."""
        return None if self.static else self.stamps[-1]

    def at(self, stamp_ns: int, child: str) -> RigidTransform:
        if self.static:
            return self.values[0]
        index = int(np.searchsorted(self.stamps, stamp_ns))
        if index < len(self.stamps) and self.stamps[index] == stamp_ns:
            return self.values[index]
        if index == 0 or index == len(self.stamps):
            raise ExtrapolationException(
                f"lookup of {self.parent} <- {child} at {stamp_ns * 1e-9:.6f} s is outside the "
                f"stored interval [{self.stamps[0] * 1e-9:.6f}, {self.stamps[-1] * 1e-9:.6f}] s"
            )
        before, after = self.stamps[index - 1], self.stamps[index]
        ratio = (stamp_ns - before) / (after - before)
        return RigidTransform.interpolate(self.values[index - 1], self.values[index], ratio)


class Buffer:
    """Stores transforms and answers lookups between any two connected frames."""

    def __init__(self, cache_time: Any = None, node: Any = None) -> None:
        """``cache_time``: how long dynamic samples are kept (Duration or seconds; default 10 s).

        ``node`` is accepted for interface compatibility with ``tf2_ros.Buffer`` and unused.
        """
        seconds = 10.0 if cache_time is None else duration_to_seconds(cache_time)
        if seconds <= 0:
            raise ValueError(f"cache_time must be positive, got {seconds} s")
        self._cache_ns = int(seconds * 1e9)
        self._links: dict[str, _FrameLink] = {}
        self._changed = threading.Condition()

    # ---- storing ------------------------------------------------------------------------
    def set_transform(self, transform: TransformStamped, authority: str) -> bool:
        """Store a dynamic ``parent <- child`` transform; returns True (as tf2 does)."""
        return self._store(transform, static=False)

    def set_transform_static(self, transform: TransformStamped, authority: str) -> bool:
        """Store a static ``parent <- child`` transform, valid at every time."""
        return self._store(transform, static=True)

    def _store(self, transform: TransformStamped, static: bool) -> bool:
        parent = transform.header.frame_id.lstrip("/")
        child = transform.child_frame_id.lstrip("/")
        if not parent or not child or parent == child:
            raise InvalidArgumentException(f"invalid frame ids {parent!r} <- {child!r}")
        value = message_to_rigid(transform)
        with self._changed:
            link = self._links.get(child)
            if link is None or link.parent != parent or link.static != static:
                link = self._links[child] = _FrameLink(parent, static)
            link.insert(stamp_to_ns(transform.header.stamp), value, self._cache_ns)
            self._changed.notify_all()
        return True

    def clear(self) -> None:
        """Forget every transform."""
        with self._changed:
            self._links.clear()

    def all_frames(self) -> dict[str, str]:
        """``child -> parent`` for every known link."""
        with self._changed:
            return {child: link.parent for child, link in self._links.items()}

    # ---- lookups ------------------------------------------------------------------------
    def lookup_transform(self, target_frame: str, source_frame: str, time: Any, timeout: Any = None) -> TransformStamped:
        """The transform mapping points in ``source_frame`` into ``target_frame`` at ``time``.

        ``time`` zero asks for the latest common time. Waits up to ``timeout`` for it to
        become available, then raises the last :class:`TransformException`.
        """
        deadline = wall_time.monotonic() + duration_to_seconds(timeout)
        with self._changed:
            while True:
                try:
                    return self._lookup(target_frame.lstrip("/"), source_frame.lstrip("/"), stamp_to_ns(time))
                except TransformException:
                    remaining = deadline - wall_time.monotonic()
                    if remaining <= 0:
                        raise
                    self._changed.wait(remaining)

    def can_transform(self, target_frame: str, source_frame: str, time: Any, timeout: Any = None,
                      return_debug_tuple: bool = False) -> Any:
        """Whether :meth:`lookup_transform` would succeed (waiting up to ``timeout``)."""
        try:
            self.lookup_transform(target_frame, source_frame, time, timeout)
        except TransformException as error:
            return (False, str(error)) if return_debug_tuple else False
        return (True, "") if return_debug_tuple else True

    def _chain_to_root(self, frame: str) -> list[str]:
        """``[frame, parent, grandparent, ..., root]``; raises for unknown frames."""
        is_parent = any(link.parent == frame for link in self._links.values())
        if frame not in self._links and not is_parent:
            raise LookupException(f'"{frame}" passed to lookup_transform does not exist')
        chain = [frame]
        while chain[-1] in self._links:
            parent = self._links[chain[-1]].parent
            if parent in chain:
                raise ConnectivityException(f"the transform tree has a loop through {parent!r}")
            chain.append(parent)
        return chain

    def _lookup(self, target: str, source: str, stamp_ns: int) -> TransformStamped:
        source_chain = self._chain_to_root(source)
        target_chain = self._chain_to_root(target)
        if source_chain[-1] != target_chain[-1]:
            raise ConnectivityException(
                f"could not find a connection between {target!r} and {source!r}: they are in "
                f"different trees (roots {target_chain[-1]!r} and {source_chain[-1]!r})"
            )
        common = next(frame for frame in source_chain if frame in target_chain)
        up_from_source = source_chain[: source_chain.index(common)]
        up_from_target = target_chain[: target_chain.index(common)]
        if stamp_ns == 0:
            latest = [self._links[f].latest_ns() for f in up_from_source + up_from_target]
            stamp_ns = min((t for t in latest if t is not None), default=0)
        common_from_source = self._compose(up_from_source, stamp_ns)
        common_from_target = self._compose(up_from_target, stamp_ns)
        return rigid_to_message(common_from_target.inverse() @ common_from_source, target, source, stamp_ns)

    def _compose(self, frames: list[str], stamp_ns: int) -> RigidTransform:
        """``ancestor <- frames[0]`` where the ancestor is the parent of ``frames[-1]``."""
        result = RigidTransform.identity()
        for frame in frames:
            result = self._links[frame].at(stamp_ns, frame) @ result
        return result
