"""Unsupervised object discovery: normalized cuts on self-supervised ViT keys (MaskCut) with
edge-aware refinement and tracking in 2D, ground removal, Euclidean clustering, oriented
boxes and temporal filtering in 3D, and late fusion of the two.

Typical use::

    from kestrel_core.features.checkpoint import load_feature_model
    from kestrel_core.discovery import DiscoveryConfig, discover_objects

    model = load_feature_model(None, "cpu")
    found = discover_objects(rgb, model, DiscoveryConfig(size=480))
    found.instances   # (H, W) int32, 0 background, k = object k
    found.scores      # (K,) float32

No module here imports ROS; the feature model is passed in.
"""

from kestrel_core.discovery.boxes import BoxTracker, OrientedBox3D, box_contains, fit_box, fit_boxes
from kestrel_core.discovery.clustering3d import (
    ClusterConfig,
    GroundConfig,
    cluster_objects,
    euclidean_clusters,
    ground_mask,
)
from kestrel_core.discovery.late_fusion import ConfirmedObject, LateFusionConfig, confirm_objects
from kestrel_core.discovery.maskcut import MaskCutConfig, MaskCutResult, MaskScore, maskcut
from kestrel_core.discovery.ncut import NCut, NCutConfig, normalized_cut
from kestrel_core.discovery.pipeline import Discovery, DiscoveryConfig, discover_objects
from kestrel_core.discovery.refine import RefineConfig, refine_to_instances, upsample_to_instances
from kestrel_core.discovery.tracking import MaskObservation, MaskTracker, TrackedObject, Tracker, TrackerConfig

__all__ = [
    "BoxTracker", "OrientedBox3D", "box_contains", "fit_box", "fit_boxes",
    "ClusterConfig", "GroundConfig", "cluster_objects", "euclidean_clusters", "ground_mask",
    "ConfirmedObject", "LateFusionConfig", "confirm_objects",
    "MaskCutConfig", "MaskCutResult", "MaskScore", "maskcut",
    "NCut", "NCutConfig", "normalized_cut",
    "Discovery", "DiscoveryConfig", "discover_objects",
    "RefineConfig", "refine_to_instances", "upsample_to_instances",
    "MaskObservation", "MaskTracker", "TrackedObject", "Tracker", "TrackerConfig",
]
