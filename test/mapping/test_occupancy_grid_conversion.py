"""nav_msgs/OccupancyGrid conversion: layout, round trip, bad messages (no ROS graph)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("nav_msgs.msg")

from std_msgs.msg import Header  # noqa: E402

from kestrel_ros.conversions.occupancy_grid import (  # noqa: E402
    OccupancyGridError, make_occupancy_grid, occupancy_grid_to_numpy)


def test_round_trip_and_layout():
    values = np.full((3, 4), -1, np.int8)
    values[0, 1] = 100  # row 0 is the lowest y
    values[2, 3] = 0
    header = Header(frame_id="map")
    header.stamp.sec = 12
    message = make_occupancy_grid(values, (-1.5, 2.25), 0.05, header)
    assert (message.info.width, message.info.height) == (4, 3)
    assert message.header.frame_id == "map" and message.info.map_load_time.sec == 12
    assert list(message.data)[:4] == [-1, 100, -1, -1]
    assert list(message.data)[-1] == 0
    back, origin, resolution = occupancy_grid_to_numpy(message)
    assert np.array_equal(back, values) and back.dtype == np.int8
    assert origin == (-1.5, 2.25) and resolution == pytest.approx(0.05)


def test_bad_messages_are_rejected():
    message = make_occupancy_grid(np.zeros((2, 2), np.int8), (0.0, 0.0), 0.1)
    message.info.width = 3
    with pytest.raises(OccupancyGridError, match="4 values for 3x2"):
        occupancy_grid_to_numpy(message)
    with pytest.raises(OccupancyGridError, match="int8"):
        make_occupancy_grid(np.zeros((2, 2), np.float32), (0.0, 0.0), 0.1)
