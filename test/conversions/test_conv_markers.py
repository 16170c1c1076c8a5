"""Box markers: a cube and a label per box, DELETE for boxes gone since the previous frame."""

from __future__ import annotations

import numpy as np
import pytest
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from kestrel_core.discovery.boxes import OrientedBox3D
from kestrel_ros.conversions.detections3d import pose_yaw
from kestrel_ros.conversions.markers import BOX_NAMESPACE, LABEL_NAMESPACE, BoxMarkers, LabelledBox

GREEN = (0.1, 0.8, 0.2, 0.5)


def item(marker_id: int, x: float) -> LabelledBox:
    box = OrientedBox3D(np.array([x, 1.0, 0.5]), np.array([2.0, 1.0, 1.0]), 0.3)
    return LabelledBox(marker_id, box, f"object {marker_id}", GREEN)


def by_key(array) -> dict[tuple[str, int], Marker]:
    return {(m.ns, m.id): m for m in array.markers}


def test_cube_and_label_of_each_box():
    header = Header(frame_id="lidar")
    array = BoxMarkers().frame(header, [item(3, 5.0), item(9, -2.0)])
    markers = by_key(array)
    assert len(array.markers) == 4 and set(markers) == {(BOX_NAMESPACE, 3), (LABEL_NAMESPACE, 3),
                                                         (BOX_NAMESPACE, 9), (LABEL_NAMESPACE, 9)}
    cube, label = markers[(BOX_NAMESPACE, 3)], markers[(LABEL_NAMESPACE, 3)]
    assert cube.type == Marker.CUBE and cube.action == Marker.ADD and cube.header.frame_id == "lidar"
    assert (cube.pose.position.x, cube.pose.position.y, cube.pose.position.z) == (5.0, 1.0, 0.5)
    assert pose_yaw(cube.pose) == pytest.approx(0.3)
    assert (cube.scale.x, cube.scale.y, cube.scale.z) == (2.0, 1.0, 1.0)
    assert (cube.color.r, cube.color.g, cube.color.b, cube.color.a) == pytest.approx(GREEN)
    assert label.type == Marker.TEXT_VIEW_FACING and label.text == "object 3"
    assert label.pose.position.z > 0.5 + 1.0 / 2  # above the box top
    assert (label.pose.position.x, label.pose.position.y) == (5.0, 1.0)


def test_vanished_boxes_are_deleted_once():
    markers = BoxMarkers()
    header = Header(frame_id="lidar")
    markers.frame(header, [item(1, 0.0), item(2, 4.0), item(3, 8.0)])
    second = by_key(markers.frame(header, [item(2, 4.1)]))
    deleted = {key for key, m in second.items() if m.action == Marker.DELETE}
    added = {key for key, m in second.items() if m.action == Marker.ADD}
    assert deleted == {(ns, i) for ns in (BOX_NAMESPACE, LABEL_NAMESPACE) for i in (1, 3)}
    assert added == {(BOX_NAMESPACE, 2), (LABEL_NAMESPACE, 2)}
    third = markers.frame(header, [item(2, 4.2)])   # nothing more to delete
    assert all(m.action == Marker.ADD for m in third.markers) and len(third.markers) == 2
    empty = markers.frame(header, [])
    assert {(m.ns, m.id, m.action) for m in empty.markers} == {
        (BOX_NAMESPACE, 2, Marker.DELETE), (LABEL_NAMESPACE, 2, Marker.DELETE)}


def test_flat_boxes_still_draw_and_ids_must_be_unique():
    flat = LabelledBox(1, OrientedBox3D(np.zeros(3), np.array([1.0, 1.0, 0.0]), 0.0), "flat", GREEN)
    cube = by_key(BoxMarkers().frame(Header(), [flat]))[(BOX_NAMESPACE, 1)]
    assert cube.scale.z > 0.0     # RViz does not draw a zero-thickness cube
    with pytest.raises(ValueError, match="unique"):
        BoxMarkers().frame(Header(), [item(1, 0.0), item(1, 2.0)])
