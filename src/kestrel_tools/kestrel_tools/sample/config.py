"""``SampleConfig``: what goes into the sample bag and when."""

from __future__ import annotations

from dataclasses import dataclass

T0_NS = 1_700_000_000 * 1_000_000_000  # fixed start of the bag: the build is deterministic


@dataclass(frozen=True)
class SampleConfig:
    """Contents and timing of the sample bag (the defaults make the shipped sample).

    Attributes:
        max_width: Motorcycle is downscaled to at most this width, in pixels.
        oakd_pairs: how many OAK-D pairs follow Motorcycle (in name order).
        stereo_period_s: seconds between stereo pairs; the first is at 0.5 s.
        video_frames: frames of vtest.avi on ``/camera/image``.
        video_width: width of the downscaled video frames, pixels.
        video_rate_hz: frame rate of ``/camera/image`` (vtest.avi was filmed at 10 Hz).
        lidar_beams: beams of the LiDAR simulated from the Motorcycle depth.
        odom_scale: scale error of the simulated odometry on ``/tf`` (1 = none).
        odom_yaw_drift_deg_s: yaw drift of that odometry about the world z axis, deg/s.
        mapping_seconds: length of the mapping stream (``/mapping/*``): the first this many
            seconds of KITTI 00, one scan per ground-truth pose (about 10 Hz).
    """

    max_width: int = 640
    oakd_pairs: int = 3
    stereo_period_s: float = 1.0
    video_frames: int = 16
    video_width: int = 320
    video_rate_hz: float = 10.0
    lidar_beams: int = 64
    odom_scale: float = 1.03
    odom_yaw_drift_deg_s: float = 2.0
    mapping_seconds: float = 30.0

    @classmethod
    def reduced(cls) -> SampleConfig:
        """A small variant for tests and quick checks: Motorcycle 320 px wide, one OAK-D pair,
        four video frames at the full sample's 320 px (at 160 px a pedestrian is a few pixels
        wide, below what the default Lucas-Kanade window of 15 px resolves with its one
        full-resolution iteration), a 16-beam LiDAR, a 3 s mapping stream."""
        return cls(max_width=320, oakd_pairs=1, video_frames=4, video_width=320, lidar_beams=16,
                   mapping_seconds=3.0)

    def __post_init__(self) -> None:
        if self.max_width < 32 or self.video_width < 32:
            raise ValueError("max_width and video_width must be at least 32 pixels")
        if self.oakd_pairs < 0 or self.video_frames < 2 or self.lidar_beams < 1:
            raise ValueError("oakd_pairs must be >= 0, video_frames >= 2 and lidar_beams >= 1")
        if not (self.stereo_period_s > 0 and self.video_rate_hz > 0 and self.odom_scale > 0):
            raise ValueError("stereo_period_s, video_rate_hz and odom_scale must be > 0")
        if not self.mapping_seconds >= 1.0:
            raise ValueError(f"mapping_seconds must be >= 1, got {self.mapping_seconds}")
