"""``message_filters`` when it is installed, else Kestrel's stand-in with the same interface."""

try:
    from message_filters import ApproximateTimeSynchronizer, Subscriber

    USING_STAND_IN = False
except ImportError:  # the PyPI ROS wheels do not ship message_filters
    from kestrel_ros.compat.approximate_time import ApproximateTimeSynchronizer, Subscriber

    USING_STAND_IN = True

__all__ = ["ApproximateTimeSynchronizer", "Subscriber", "USING_STAND_IN"]
