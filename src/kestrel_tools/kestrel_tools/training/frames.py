"""Unlabeled RGB frames for self-supervised training: video files, rosbag2 image topics and
image folders, behind one iterator.

Every source yields ``(H, W, 3) uint8`` RGB frames in recording order, so consecutive frames of
one source are a temporal pair (flow training relies on that). A source that cannot be read
raises ``ValueError`` or ``OSError`` naming the file (and the topic for bags).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from kestrel_tools.bags import open_bag
from kestrel_tools.image_io import read_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff")
IMAGE_TYPE = "sensor_msgs/msg/Image"


@dataclass(frozen=True)
class FrameSource:
    """One recording: ``kind`` is ``video``, ``bag`` or ``images``; ``topic`` is for bags only
    (None picks the bag's only image topic)."""

    kind: str
    path: Path
    topic: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("video", "bag", "images"):
            raise ValueError(f"unknown frame source kind {self.kind!r}")


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """``--video``, ``--bag`` (with ``--topic``) and ``--images``, each repeatable."""
    group = parser.add_argument_group("training data (at least one; each is repeatable)")
    group.add_argument("--video", type=Path, action="append", default=[],
                       help="a video file readable by OpenCV")
    group.add_argument("--bag", type=Path, action="append", default=[],
                       help="a rosbag2 folder or file (sqlite3 or MCAP) with sensor_msgs/Image")
    group.add_argument("--topic", action="append", default=[],
                       help="image topic to read from the bags (repeatable; default: every "
                            "image topic of each bag)")
    group.add_argument("--images", type=Path, action="append", default=[],
                       help="a folder of images, read in name order")


def rows_by_columns(text: str) -> tuple[int, int]:
    """argparse type of a crop size given as ``ROWSxCOLS``, e.g. ``160x224``."""
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ROWSxCOLS, got {text!r}") from None
    return rows, cols


def sources_from_args(args: argparse.Namespace) -> list[FrameSource]:
    """The sources named on the command line; ``ValueError`` if there are none."""
    sources = [FrameSource("video", path) for path in args.video]
    for bag in args.bag:
        topics = args.topic or _image_topics(bag)
        sources += [FrameSource("bag", bag, topic) for topic in topics]
    sources += [FrameSource("images", path) for path in args.images]
    if not sources:
        raise ValueError("no training data: give --video, --bag or --images")
    return sources


def _image_topics(bag: Path) -> list[str]:
    with open_bag(bag) as reader:
        topics = sorted(t for t, kind in reader.topics.items() if kind == IMAGE_TYPE)
    if not topics:
        raise ValueError(f"{bag}: no {IMAGE_TYPE} topic")
    return topics


def iter_frames(source: FrameSource, *, stride: int = 1, max_frames: int | None = None,
                max_side: int | None = None) -> Iterator[np.ndarray]:
    """Frames of one source as ``(H, W, 3) uint8`` RGB.

    Args:
        stride: keep every ``stride``-th frame.
        max_frames: stop after this many kept frames.
        max_side: shrink frames (area interpolation) so that neither side exceeds this.
    """
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    readers = {"video": _video_frames, "bag": _bag_frames, "images": _folder_frames}
    kept = 0
    for index, frame in enumerate(readers[source.kind](source)):
        if index % stride:
            continue
        yield _shrink(frame, max_side)
        kept += 1
        if max_frames is not None and kept >= max_frames:
            return


def load_frames(sources: Sequence[FrameSource], **options: int | None) -> list[list[np.ndarray]]:
    """Every source's frames in memory, one list per source (see :func:`iter_frames`)."""
    return [list(iter_frames(source, **options)) for source in sources]


def _video_frames(source: FrameSource) -> Iterator[np.ndarray]:
    if not source.path.is_file():
        raise OSError(f"{source.path}: no such video file")
    capture = cv2.VideoCapture(str(source.path))
    if not capture.isOpened():
        raise ValueError(f"{source.path}: OpenCV cannot open this video")
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def _bag_frames(source: FrameSource) -> Iterator[np.ndarray]:
    # Deferred: kestrel_ros is only needed to decode bag images, not for videos or folders.
    from kestrel_ros.conversions.image import image_to_numpy, to_rgb8

    with open_bag(source.path) as reader:
        topic = source.topic or _only_image_topic(reader.topics, source.path)
        for message in reader.messages(topic):
            msg = message.msg
            try:
                yield to_rgb8(image_to_numpy(msg), msg.encoding)
            except ValueError as err:
                raise ValueError(f"{source.path} {topic} at {message.timestamp_ns} ns: {err}") from err


def _only_image_topic(topics: dict[str, str], path: Path) -> str:
    images = [t for t, kind in topics.items() if kind == IMAGE_TYPE]
    if len(images) != 1:
        raise ValueError(f"{path}: name the image topic, the bag has {len(images)}: {images}")
    return images[0]


def _folder_frames(source: FrameSource) -> Iterator[np.ndarray]:
    if not source.path.is_dir():
        raise OSError(f"{source.path}: no such image folder")
    files = sorted(p for p in source.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{source.path}: no images ({', '.join(IMAGE_SUFFIXES)})")
    for path in files:
        image = read_image(path)
        if image.dtype == np.uint16:
            image = (image >> 8).astype(np.uint8)
        yield np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image


def _shrink(frame: np.ndarray, max_side: int | None) -> np.ndarray:
    if max_side is None or max(frame.shape[:2]) <= max_side:
        return frame
    scale = max_side / max(frame.shape[:2])
    size = (max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
