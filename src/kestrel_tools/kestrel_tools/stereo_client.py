"""Feed stereo pairs to a running ``stereo_depth`` node over DDS and collect its answers."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header
from stereo_msgs.msg import DisparityImage

from kestrel_core.geometry.camera import PinholeCamera
from kestrel_ros.compat.approximate_time import stamp_ns, time_ns
from kestrel_ros.conversions.camera_info import model_to_camera_info
from kestrel_ros.conversions.disparity import disparity_image_to_numpy
from kestrel_ros.conversions.image import image_to_numpy, numpy_to_image
from kestrel_tools.graph import GraphProbe

INPUT_TOPICS = ("left/image_rect", "right/image_rect", "left/camera_info", "right/camera_info")


@dataclass(frozen=True)
class StereoReply:
    """What the node published for one input stamp.

    Attributes:
        disparity_msg: the DisparityImage.
        depth: (H, W) float32 metres, NaN invalid.
        points: the PointCloud2, or None when points are not awaited.
    """

    disparity_msg: DisparityImage
    depth: np.ndarray
    points: PointCloud2 | None

    @property
    def disparity(self) -> np.ndarray:
        """(H, W) float32 disparity as published (shifted by doffs), NaN where invalid."""
        return disparity_image_to_numpy(self.disparity_msg)


class StereoTopicClient:
    """Publishes pairs with CameraInfo on the node's input topics; waits for its outputs.

    ``namespace`` is the node's namespace (e.g. ``/robot`` for ``-r __ns:=/robot``); the
    probe's topics are resolved inside it.
    """

    def __init__(self, probe: GraphProbe, want_points: bool = True, namespace: str = "") -> None:
        self.probe = probe
        self.want_points = want_points
        self._prefix = namespace.rstrip("/") + "/" if namespace else ""
        for topic in INPUT_TOPICS:
            probe.publisher(CameraInfo if topic.endswith("camera_info") else Image, self.topic(topic))
        probe.subscribe(DisparityImage, self.topic("disparity"))
        probe.subscribe(Image, self.topic("depth"))
        if want_points:
            probe.subscribe(PointCloud2, self.topic("points"))
        self._stamps = itertools.count(1)

    def topic(self, name: str) -> str:
        """``name`` inside the node's namespace."""
        return self._prefix + name

    @property
    def input_topics(self) -> list[str]:
        return [self.topic(name) for name in INPUT_TOPICS]

    def next_stamp(self) -> Time:
        """A fresh, increasing stamp (whole seconds, so stamps never collide)."""
        return Time(sec=1_000 + next(self._stamps), nanosec=0)

    def publish(self, left: Image, right: Image, left_info: CameraInfo | None,
                right_info: CameraInfo | None) -> None:
        """Publish CameraInfo first (when given), then the images."""
        if left_info is not None:
            self.probe.publisher(CameraInfo, self.topic("left/camera_info")).publish(left_info)
        if right_info is not None:
            self.probe.publisher(CameraInfo, self.topic("right/camera_info")).publish(right_info)
        self.probe.publisher(Image, self.topic("left/image_rect")).publish(left)
        self.probe.publisher(Image, self.topic("right/image_rect")).publish(right)

    def messages_for(self, left: np.ndarray, right: np.ndarray, left_camera: PinholeCamera,
                     right_camera: PinholeCamera, stamp: Time, encoding: str | None = None,
                     ) -> tuple[Image, Image, CameraInfo, CameraInfo]:
        """Image and CameraInfo messages for a pair, all stamped ``stamp``.

        ``encoding`` defaults to mono8 for (H, W) uint8 images and rgb8 for (H, W, 3).
        """
        if encoding is None:
            encoding = "mono8" if left.ndim == 2 else "rgb8"
        left_header = Header(stamp=stamp, frame_id=left_camera.frame_id)
        right_header = Header(stamp=stamp, frame_id=right_camera.frame_id)
        return (
            numpy_to_image(left, encoding, header=left_header),
            numpy_to_image(right, encoding, header=right_header),
            model_to_camera_info(left_camera, left_header),
            model_to_camera_info(right_camera, right_header),
        )

    def reply_for(self, stamp: Time) -> StereoReply | None:
        """The outputs stamped ``stamp``, once all awaited ones have arrived."""
        key = time_ns(stamp)
        found = {}
        for topic in ("disparity", "depth", "points"):
            for msg in self.probe.received.get(self.topic(topic), []):
                if stamp_ns(msg) == key:
                    found[topic] = msg
        if "disparity" not in found or "depth" not in found:
            return None
        if self.want_points and "points" not in found:
            return None
        return StereoReply(found["disparity"], image_to_numpy(found["depth"]), found.get("points"))

    def request(self, left: np.ndarray, right: np.ndarray, left_camera: PinholeCamera,
                right_camera: PinholeCamera, timeout: float = 120.0,
                resend_period: float = 15.0, encoding: str | None = None) -> StereoReply:
        """Send a pair until the node answers it; return the answer.

        A pair is re-sent with a new stamp every ``resend_period`` seconds, as a camera
        stream would, in case the first one reached the node before its CameraInfo.

        Raises:
            TimeoutError: no answer within ``timeout`` seconds.
        """
        sent: list[Time] = []

        def send() -> None:
            stamp = self.next_stamp()
            sent.append(stamp)
            self.publish(*self.messages_for(left, right, left_camera, right_camera, stamp, encoding))

        def answered() -> bool:
            return any(self.reply_for(stamp) is not None for stamp in sent)

        if not self.probe.wait_for(answered, timeout, while_waiting=send, period=resend_period):
            raise TimeoutError(f"stereo_depth did not answer within {timeout:.0f} s "
                               f"({len(sent)} pairs sent)")
        return next(reply for stamp in sent if (reply := self.reply_for(stamp)) is not None)

