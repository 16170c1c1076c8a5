"""Video stream of the sample bag: the first frames of vtest.avi on ``/camera/image`` (rgb8)."""

from __future__ import annotations

from pathlib import Path

from rosbags.typesys.store import Typestore

from kestrel_tools.sample import messages, topics
from kestrel_tools.sample.records import SampleMessage
from kestrel_tools.training.frames import FrameSource, iter_frames


def video_messages(store: Typestore, video: Path, frames: int, width: int, start_ns: int,
                   rate_hz: float) -> list[SampleMessage]:
    """``frames`` consecutive frames, shrunk so their longer side is ``width`` pixels.

    Frame k is stamped ``start_ns + k / rate_hz``. Raises ``ValueError`` if the video is
    shorter than ``frames``.
    """
    out = []
    for index, rgb in enumerate(iter_frames(FrameSource("video", video), max_frames=frames,
                                            max_side=width)):
        stamp = start_ns + round(index * 1e9 / rate_hz)
        out.append(SampleMessage(topics.VIDEO_IMAGE, stamp,
                                 messages.image(store, stamp, topics.VIDEO_FRAME, rgb)))
    if len(out) < frames:
        raise ValueError(f"{video}: {len(out)} frames, the sample needs {frames}")
    return out
