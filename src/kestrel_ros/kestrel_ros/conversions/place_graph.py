"""A place graph (planar node poses and edges) as ``visualization_msgs/MarkerArray`` for RViz.

Three markers, each replaced on every publish (``ADD`` with a fixed ``ns``/``id``):

* ``places``: a ``SPHERE_LIST``, one sphere per node at its ``(x, y)``;
* ``odometry_edges`` and ``revisit_edges``: ``LINE_LIST`` segments between the nodes each
  edge joins (revisit edges are the loop closures).

A marker without points is still sent, so edges that disappear are cleared in RViz.
"""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

__all__ = ["place_graph_markers"]

NODE_DIAMETER = 0.6
EDGE_WIDTH = 0.1


def _points(xy: np.ndarray) -> list[Point]:
    """``Point`` messages of (N, 2) positions at z = 0 (Marker.points takes nothing else)."""
    return [Point(x=float(x), y=float(y), z=0.0) for x, y in np.asarray(xy, np.float64)]


def _marker(header: Header, namespace: str, kind: int, scale: float,
            colour: tuple[float, float, float], xy: np.ndarray) -> Marker:
    marker = Marker(header=header, ns=namespace, id=0, type=kind, action=Marker.ADD)
    marker.pose.orientation.w = 1.0
    marker.scale.x = marker.scale.y = marker.scale.z = scale
    marker.color = ColorRGBA(r=colour[0], g=colour[1], b=colour[2], a=1.0)
    marker.points = _points(xy)
    return marker


def place_graph_markers(poses: np.ndarray, edges: np.ndarray, revisit: np.ndarray,
                        header: Header) -> MarkerArray:
    """Markers of a place graph.

    Args:
        poses: (N, 3) node poses ``(x, y, theta)`` in ``header.frame_id``.
        edges: (E, 2) node index pairs.
        revisit: (E,) bool, True for loop-closure (revisit) edges.
        header: frame and stamp of every marker.
    """
    poses = np.asarray(poses, np.float64).reshape(-1, 3)
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    revisit = np.asarray(revisit, bool).reshape(-1)
    if len(revisit) != len(edges):
        raise ValueError(f"{len(edges)} edges but {len(revisit)} revisit flags")
    if edges.size and (edges.min() < 0 or edges.max() >= len(poses)):
        raise ValueError(f"edges index nodes outside 0..{len(poses) - 1}")
    ends = poses[edges.reshape(-1), :2].reshape(-1, 2, 2)  # (E, 2 ends, xy)
    markers = MarkerArray()
    markers.markers = [
        _marker(header, "places", Marker.SPHERE_LIST, NODE_DIAMETER, (0.1, 0.4, 1.0), poses[:, :2]),
        _marker(header, "odometry_edges", Marker.LINE_LIST, EDGE_WIDTH, (0.6, 0.6, 0.6),
                ends[~revisit].reshape(-1, 2)),
        _marker(header, "revisit_edges", Marker.LINE_LIST, EDGE_WIDTH, (1.0, 0.3, 0.1),
                ends[revisit].reshape(-1, 2)),
    ]
    return markers
