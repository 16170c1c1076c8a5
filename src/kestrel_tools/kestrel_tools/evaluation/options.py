"""``EvalOptions``: how ``kestrel eval`` runs the core on a bag."""

from __future__ import annotations

from dataclasses import dataclass

from kestrel_core.flow import FLOW_METHODS


@dataclass(frozen=True)
class EvalOptions:
    """Settings shared by the evaluation tasks.

    Attributes:
        max_disparity: disparities searched by SGM, pixels.
        device: torch device of SGM, Lucas-Kanade and the mapper (``cpu`` keeps runs
            bit-reproducible).
        flow_method: one of :data:`kestrel_core.flow.FLOW_METHODS` (see
            :class:`~kestrel_core.flow.FlowEstimator`; ``learned`` uses the shipped model).
        trajectory_topic: estimate for the trajectory task: a tf2_msgs/TFMessage topic (the
            ``odom_frame -> base_frame`` transforms are used), geometry_msgs/PoseStamped,
            geometry_msgs/PoseWithCovarianceStamped or nav_msgs/Odometry.
        odom_frame, base_frame: parent and child frame picked from a TFMessage topic.
        max_time_diff_s: largest stamp difference of associated poses, seconds.
        rpe_delta_s: RPE separation, seconds.
        progress: show tqdm progress bars on stderr (when stderr is a terminal).
    """

    max_disparity: int = 128
    device: str = "cpu"
    flow_method: str = "lk"
    trajectory_topic: str = "/tf"
    odom_frame: str = "odom"
    base_frame: str = "base_link"
    max_time_diff_s: float = 0.02
    rpe_delta_s: float = 1.0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.max_disparity < 1:
            raise ValueError(f"max_disparity must be >= 1, got {self.max_disparity}")
        if self.flow_method not in FLOW_METHODS:
            raise ValueError(f"flow method must be one of {', '.join(FLOW_METHODS)}, "
                             f"got {self.flow_method!r}")
        if self.max_time_diff_s < 0 or not self.rpe_delta_s > 0:
            raise ValueError("max_time_diff_s must be >= 0 and rpe_delta_s > 0")
