"""Place graph -> MarkerArray: one sphere per node, one segment per edge, split by edge kind."""

import numpy as np
import pytest
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from kestrel_ros.conversions.place_graph import place_graph_markers

POSES = np.array([[0.0, 0.0, 0.0], [4.0, 0.5, 0.1], [8.0, 1.0, 0.2], [0.5, -0.5, 3.0]])
EDGES = np.array([[0, 1], [1, 2], [2, 3], [0, 3]])
REVISIT = np.array([False, False, False, True])


def xy(marker: Marker) -> np.ndarray:
    return np.array([[p.x, p.y] for p in marker.points]).reshape(-1, 2)


def test_nodes_and_edges_become_spheres_and_segments():
    header = Header(frame_id="map")
    header.stamp.sec = 7
    places, odometry, revisit = place_graph_markers(POSES, EDGES, REVISIT, header).markers
    assert [m.ns for m in (places, odometry, revisit)] == ["places", "odometry_edges", "revisit_edges"]
    assert (places.type, odometry.type, revisit.type) == (Marker.SPHERE_LIST, Marker.LINE_LIST, Marker.LINE_LIST)
    assert all(m.header.frame_id == "map" and m.header.stamp.sec == 7 for m in (places, odometry, revisit))
    np.testing.assert_array_equal(xy(places), POSES[:, :2])
    # LINE_LIST: consecutive point pairs are the two ends of each edge
    np.testing.assert_array_equal(xy(odometry), POSES[EDGES[~REVISIT].ravel(), :2])
    np.testing.assert_array_equal(xy(revisit), POSES[[0, 3], :2])


def test_an_empty_graph_still_clears_every_marker():
    markers = place_graph_markers(np.zeros((0, 3)), np.zeros((0, 2)), np.zeros(0, bool), Header()).markers
    assert len(markers) == 3 and all(len(m.points) == 0 and m.action == Marker.ADD for m in markers)


def test_inconsistent_edges_are_rejected():
    with pytest.raises(ValueError, match="revisit flags"):
        place_graph_markers(POSES, EDGES, REVISIT[:2], Header())
    with pytest.raises(ValueError, match="outside"):
        place_graph_markers(POSES, np.array([[0, 4]]), np.array([False]), Header())
