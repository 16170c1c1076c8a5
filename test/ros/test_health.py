"""Health bookkeeping behind /diagnostics: throttled logs, counts, rates."""

from kestrel_ros.health import HealthStats


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_bad_input_is_logged_once_per_cause_per_period_and_all_are_counted():
    clock = FakeClock()
    stats = HealthStats(throttle_s=5.0, clock=clock)
    lines = []
    for step in range(12):
        clock.now = step * 1.0
        lines.append(stats.frame_dropped("size_mismatch", f"left is 4x4 but right is {step}x4"))
        lines.append(stats.frame_dropped("missing_camera_info", "no CameraInfo"))
    logged = [line for line in lines if line]
    assert [line.split("]")[0] for line in logged].count("[size_mismatch") == 3  # t = 0, 5, 10
    assert "(4 more since the last report)" in logged[2]
    assert stats.dropped == 24
    assert dict(stats.key_values())["dropped.size_mismatch"] == "12"


def test_rate_and_median_processing_time():
    clock = FakeClock()
    stats = HealthStats(clock=clock)
    for step in range(11):
        clock.now = step * 0.1
        stats.input_received()
        stats.frame_processed(0.020 if step % 2 else 0.040)
    assert abs(stats.input_rate_hz - 10.0) < 1e-6
    assert stats.median_processing_ms == 40.0  # six of the eleven took 40 ms
    assert stats.received == stats.processed == 11


def test_causes_stop_being_active_after_the_hold_time():
    clock = FakeClock()
    stats = HealthStats(warn_hold_s=10.0, clock=clock)
    stats.frame_dropped("unsupported_encoding", "yuv422")
    assert stats.active_causes() == ["unsupported_encoding"]
    clock.now = 10.5
    assert stats.active_causes() == []
