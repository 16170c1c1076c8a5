"""QoS profiles: sensor-data by default, with reliability and depth overridable by parameter."""

from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)

from kestrel_ros.params import ParamSpec

RELIABILITY_CHOICES = ("best_effort", "reliable")

QOS_PARAMS = (
    ParamSpec(
        "qos_reliability",
        "best_effort",
        "Reliability of the sensor subscriptions: best_effort (sensor-data profile) or "
        "reliable (for bag replay and tests).",
        choices=RELIABILITY_CHOICES,
    ),
    ParamSpec("qos_depth", 5, "History depth of the sensor subscriptions.", minimum=1, maximum=100),
)


def sensor_qos(reliability: str = "best_effort", depth: int = 5) -> QoSProfile:
    """The sensor-data profile (keep-last, volatile) with the given reliability and depth."""
    if reliability not in RELIABILITY_CHOICES:
        raise ValueError(f"reliability must be one of {RELIABILITY_CHOICES}, got {reliability!r}")
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=(
            ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
        ),
        durability=DurabilityPolicy.VOLATILE,
    )


def output_qos(depth: int = 5) -> QoSProfile:
    """Publishers are reliable: they match both reliable and best-effort subscribers."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )
