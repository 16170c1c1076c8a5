"""RViz markers of upright 3D boxes, with the markers of vanished boxes deleted.

Each box is drawn as a translucent ``CUBE`` (namespace ``boxes``) and a ``TEXT_VIEW_FACING``
label just above it (namespace ``labels``), both with the box's ``marker_id``.
:class:`BoxMarkers` remembers which ids it drew last time and adds a ``DELETE`` for each id
that is gone, so RViz never keeps a stale box; markers never expire on their own
(``lifetime`` 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from kestrel_core.discovery.boxes import OrientedBox3D
from kestrel_ros.conversions.detections3d import box_pose

__all__ = ["BOX_NAMESPACE", "LABEL_NAMESPACE", "LabelledBox", "BoxMarkers"]

BOX_NAMESPACE = "boxes"
LABEL_NAMESPACE = "labels"
_LABEL_HEIGHT_M = 0.3   # text height; the label sits this far above the box top


@dataclass(frozen=True)
class LabelledBox:
    """A box to draw.

    Attributes:
        marker_id: id of its two markers, stable over frames (e.g. the track id).
        box: the box.
        label: text shown above it.
        rgba: colour of the cube, components in ``[0, 1]``.
    """

    marker_id: int
    box: OrientedBox3D
    label: str
    rgba: tuple[float, float, float, float]


def _cube(header: Header, item: LabelledBox) -> Marker:
    marker = Marker(header=header, ns=BOX_NAMESPACE, id=item.marker_id, type=Marker.CUBE, action=Marker.ADD)
    marker.pose = box_pose(item.box)
    marker.scale.x, marker.scale.y, marker.scale.z = (max(float(v), 1e-3) for v in item.box.extents)
    marker.color = ColorRGBA(r=item.rgba[0], g=item.rgba[1], b=item.rgba[2], a=item.rgba[3])
    return marker


def _label(header: Header, item: LabelledBox) -> Marker:
    marker = Marker(header=header, ns=LABEL_NAMESPACE, id=item.marker_id, type=Marker.TEXT_VIEW_FACING,
                    action=Marker.ADD, text=item.label)
    marker.pose.position.x, marker.pose.position.y = float(item.box.center[0]), float(item.box.center[1])
    marker.pose.position.z = float(item.box.center[2] + item.box.extents[2] / 2.0 + _LABEL_HEIGHT_M)
    marker.pose.orientation.w = 1.0
    marker.scale.z = _LABEL_HEIGHT_M
    marker.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
    return marker


def _delete(header: Header, namespace: str, marker_id: int) -> Marker:
    return Marker(header=header, ns=namespace, id=marker_id, action=Marker.DELETE)


class BoxMarkers:
    """Builds one MarkerArray per frame: ADD for the frame's boxes, DELETE for the ids drawn
    by the previous call that are not in this frame."""

    def __init__(self) -> None:
        self._shown: set[int] = set()

    def frame(self, header: Header, boxes: Sequence[LabelledBox]) -> MarkerArray:
        ids = {item.marker_id for item in boxes}
        if len(ids) != len(boxes):
            raise ValueError("marker ids must be unique within a frame")
        stale = sorted(self._shown - ids)
        self._shown = ids
        markers = [_delete(header, namespace, marker_id)
                   for marker_id in stale for namespace in (BOX_NAMESPACE, LABEL_NAMESPACE)]
        for item in boxes:
            markers += [_cube(header, item), _label(header, item)]
        return MarkerArray(markers=markers)
