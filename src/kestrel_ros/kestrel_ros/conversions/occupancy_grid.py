"""``nav_msgs/OccupancyGrid`` to and from ``(H, W) int8`` grids.

Conventions (REP-103 and nav_msgs): ``data`` is row-major starting with the cell at
``info.origin`` (the map's lowest x and y), rows along y; values are occupancy
probabilities in percent, -1 for unknown. Kestrel's grids use the same layout, so the
conversion is a copy of the bytes. Only origins without rotation are read, the only kind
Kestrel writes (nav2's map_server writes none other either).
"""

from __future__ import annotations

import array

import numpy as np
from nav_msgs.msg import OccupancyGrid
from std_msgs.msg import Header

from kestrel_ros.conversions._buffers import make_header

__all__ = ["OccupancyGridError", "make_occupancy_grid", "occupancy_grid_to_numpy"]


class OccupancyGridError(ValueError):
    """An OccupancyGrid whose size, data or origin Kestrel cannot read."""


def make_occupancy_grid(values: np.ndarray, origin: tuple[float, float], resolution: float,
                        header: Header | None = None, frame_id: str | None = None) -> OccupancyGrid:
    """An OccupancyGrid from (H, W) int8 values (-1 unknown, 0..100) with its cell (0, 0)
    corner at ``origin`` (x0, y0) metres; ``info.map_load_time`` is the header's stamp."""
    values = np.asarray(values)
    if values.ndim != 2 or values.dtype != np.int8:
        raise OccupancyGridError(f"values must be (H, W) int8, got {values.shape} {values.dtype}")
    if not resolution > 0:
        raise OccupancyGridError(f"resolution must be > 0, got {resolution}")
    message = OccupancyGrid()
    message.header = make_header(header, frame_id)
    message.info.map_load_time = message.header.stamp
    message.info.resolution = float(resolution)
    message.info.height, message.info.width = (int(n) for n in values.shape)
    message.info.origin.position.x = float(origin[0])
    message.info.origin.position.y = float(origin[1])
    data = array.array("b")
    data.frombytes(np.ascontiguousarray(values).reshape(-1).view(np.uint8))
    message.data = data
    return message


def occupancy_grid_to_numpy(message: OccupancyGrid) -> tuple[np.ndarray, tuple[float, float], float]:
    """(H, W) int8 values, origin (x0, y0) and resolution of an OccupancyGrid."""
    info = message.info
    height, width = int(info.height), int(info.width)
    data = np.asarray(message.data, dtype=np.int8)
    if data.size != height * width:
        raise OccupancyGridError(f"OccupancyGrid has {data.size} values for {width}x{height} cells")
    q = info.origin.orientation
    if abs(q.x) > 1e-9 or abs(q.y) > 1e-9 or abs(q.z) > 1e-9:
        raise OccupancyGridError("OccupancyGrid origins with a rotation are not supported")
    return (data.reshape(height, width).copy(), (info.origin.position.x, info.origin.position.y),
            float(info.resolution))
