"""Stand-ins for ``tf2_ros`` TransformListener, TransformBroadcaster, StaticTransformBroadcaster.

Used only where ``tf2_ros`` cannot be imported (:mod:`kestrel_ros.compat.tf` chooses). QoS
follows tf2_ros: ``/tf`` is reliable and volatile (depth 100); ``/tf_static`` is reliable and
transient-local, so a listener that starts late still receives the static transforms.
"""

from __future__ import annotations

from typing import Any, Iterable

from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

from kestrel_ros.compat.tf_buffer import Buffer, TransformException

TF_TOPIC = "/tf"
TF_STATIC_TOPIC = "/tf_static"


def tf_qos(depth: int = 100) -> QoSProfile:
    """QoS of ``/tf``: reliable, volatile, keep-last ``depth``."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )


def tf_static_qos(depth: int = 1) -> QoSProfile:
    """QoS of ``/tf_static``: reliable, transient-local (late joiners get the latched message)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )


class TransformListener:
    """Fills a :class:`Buffer` from ``/tf`` and ``/tf_static`` on ``node``.

    The subscriptions are served by whatever executor spins ``node``. ``spin_thread=True``
    (which tf2_ros uses to spin a private node) is not supported by the stand-in.
    """

    def __init__(self, buffer: Buffer, node: Node, *, spin_thread: bool = False,
                 qos: QoSProfile | None = None, static_qos: QoSProfile | None = None) -> None:
        if spin_thread:
            raise ValueError("the Kestrel TF stand-in does not spin its own thread; spin the node")
        self.buffer = buffer
        self.node = node
        self.tf_sub = node.create_subscription(TFMessage, TF_TOPIC, self.callback, qos or tf_qos())
        self.tf_static_sub = node.create_subscription(
            TFMessage, TF_STATIC_TOPIC, self.static_callback, static_qos or tf_static_qos(depth=100)
        )

    def callback(self, msg: TFMessage) -> None:
        self._store(msg, static=False)

    def static_callback(self, msg: TFMessage) -> None:
        self._store(msg, static=True)

    def _store(self, msg: TFMessage, static: bool) -> None:
        authority = "default_authority"
        for transform in msg.transforms:
            try:
                if static:
                    self.buffer.set_transform_static(transform, authority)
                else:
                    self.buffer.set_transform(transform, authority)
            except TransformException as error:
                self.node.get_logger().warning(f"ignoring transform: {error}", throttle_duration_sec=5.0)

    def unregister(self) -> None:
        """Destroy both subscriptions."""
        self.node.destroy_subscription(self.tf_sub)
        self.node.destroy_subscription(self.tf_static_sub)


def _as_list(transform: TransformStamped | Iterable[TransformStamped]) -> list[TransformStamped]:
    return [transform] if isinstance(transform, TransformStamped) else list(transform)


class TransformBroadcaster:
    """Publishes dynamic transforms on ``/tf``."""

    def __init__(self, node: Node, qos: QoSProfile | int | None = None) -> None:
        self.pub_tf = node.create_publisher(TFMessage, TF_TOPIC, qos or tf_qos())

    def sendTransform(self, transform: Any) -> None:  # noqa: N802 (tf2_ros name)
        self.pub_tf.publish(TFMessage(transforms=_as_list(transform)))


class StaticTransformBroadcaster:
    """Publishes static transforms on the latched ``/tf_static``.

    As in tf2_ros, every call republishes all transforms sent so far (the newest per child
    frame), because a transient-local topic keeps only the last message.
    """

    def __init__(self, node: Node, qos: QoSProfile | int | None = None) -> None:
        self.pub_tf = node.create_publisher(TFMessage, TF_STATIC_TOPIC, qos or tf_static_qos())
        self._by_child: dict[str, TransformStamped] = {}

    def sendTransform(self, transform: Any) -> None:  # noqa: N802 (tf2_ros name)
        for item in _as_list(transform):
            self._by_child[item.child_frame_id] = item
        self.pub_tf.publish(TFMessage(transforms=list(self._by_child.values())))
