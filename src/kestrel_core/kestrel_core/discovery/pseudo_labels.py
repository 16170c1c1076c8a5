"""Per-patch training targets for the discovery head, without labels (self-training).

Round 1 merges two unsupervised sources on the image's token grid ``(h, w)``:

a. **MaskCut masks** (:func:`~kestrel_core.discovery.maskcut.maskcut`) whose score reaches
   ``min_mask_score``;
b. **3D clusters** of a LiDAR scan (:func:`~kestrel_core.discovery.clustering3d.cluster_objects`)
   projected into the camera (:func:`~kestrel_core.fusion.projection.project_points`): a
   patch belongs to a cluster when at least ``min_points_per_patch`` of its points land in
   it; each cluster's patch set is closed (``closing`` patches) and its holes filled, since
   LiDAR beams leave gaps between rows.

A MaskCut mask that a cluster confirms (:func:`~kestrel_core.discovery.late_fusion.confirm_objects`)
counts as confident whatever its score, and the cluster's patches join it. Clusters that
confirm no mask become objects of their own when they cover at least ``min_patches``.

A MaskCut mask covering more than ``max_area`` of the grid, or more than ``max_corners`` of
its four corner patches, is most likely background (a wall, the floor; CutLER flips such a
cut): its patches are negatives. A cluster that large confirming no mask is left out.

Targets: patches of an object are positive (1), other patches negative (0), except for
the *ignore* region (weight 0): patches of masks below the score threshold, and the ring of
``boundary_ignore`` patches around every object (8-neighbourhood), where a token is partly
object and partly background. Where two objects touch, their contact patches (those with a
4-neighbour of another object) are negative: the head then learns a gap between
neighbouring objects, which keeps them apart in the connected components of the decoder.

Round 2 (:func:`targets_from_predictions`): the head's own confident predictions.
Probability at least ``high`` is positive, at most ``low`` negative, in between ignored;
the objects are the connected components of the positives. As in CutLER's self-training,
the round-1 objects that the predictions miss (less than ``keep_overlap`` of their patches
predicted) are added back, so that round 2 does not forget what the head has not yet
learnt.

Box targets (:func:`box_targets`): every object patch regresses the log distances, in
patches, from its centre to the edges of its object's bounding box on the grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage
import torch

from kestrel_core.discovery.head import objectness_components
from kestrel_core.discovery.late_fusion import LateFusionConfig, confirm_objects
from kestrel_core.discovery.refine import upsample_to_instances
from kestrel_core.fusion.projection import project_points
from kestrel_core.geometry.camera import PinholeCamera

__all__ = ["PseudoLabelConfig", "PatchTargets", "ClusterEvidence", "cluster_patch_masks",
           "pseudo_labels", "targets_from_predictions", "box_targets"]


@dataclass(frozen=True)
class PseudoLabelConfig:
    """Settings of the pseudo-labels (see the module docstring).

    Attributes:
        min_mask_score: MaskCut score a mask needs to be a positive.
        max_area: largest share of the grid a positive MaskCut mask or lone cluster may cover.
        max_corners: most corner patches of the grid a positive MaskCut mask may cover.
        boundary_ignore: width in patches of the ignored ring around each object.
        min_points_per_patch: projected cluster points that make a patch part of the cluster.
        closing: binary closing of each cluster's patches, in patches (0: none).
        min_patches: smallest object, in patches (clusters of their own, round-2 components).
        fusion: when a cluster confirms a mask.
        high, low: round-2 probability thresholds of positives and negatives.
        keep_overlap: a round-1 object with a smaller share of predicted patches is kept.
    """

    min_mask_score: float = 0.3
    max_area: float = 0.5
    max_corners: int = 1
    boundary_ignore: int = 1
    min_points_per_patch: int = 1
    closing: int = 1
    min_patches: int = 2
    fusion: LateFusionConfig = LateFusionConfig()
    high: float = 0.7
    low: float = 0.3
    keep_overlap: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_mask_score <= 1.0:
            raise ValueError(f"min_mask_score must be in [0, 1], got {self.min_mask_score}")
        if not 0.0 < self.max_area <= 1.0:
            raise ValueError(f"max_area must be in (0, 1], got {self.max_area}")
        if self.boundary_ignore < 0 or self.closing < 0:
            raise ValueError("boundary_ignore and closing must be >= 0")
        if self.min_points_per_patch < 1 or self.min_patches < 1:
            raise ValueError("min_points_per_patch and min_patches must be >= 1")
        if not 0.0 < self.low < self.high < 1.0:
            raise ValueError(f"need 0 < low < high < 1, got low {self.low}, high {self.high}")
        if not 0.0 <= self.keep_overlap <= 1.0:
            raise ValueError(f"keep_overlap must be in [0, 1], got {self.keep_overlap}")


@dataclass(frozen=True)
class PatchTargets:
    """Training targets of one image on its token grid.

    Attributes:
        objectness: ``(h, w)`` float32, 1 object, 0 background.
        valid: ``(h, w)`` bool, False in the ignore region.
        instances: ``(h, w)`` int32 object ids ``1..K``, 0 background (for the box targets).
    """

    objectness: np.ndarray
    valid: np.ndarray
    instances: np.ndarray

    @property
    def grid(self) -> tuple[int, int]:
        return self.instances.shape

    @classmethod
    def from_instances(cls, instances: np.ndarray, ignore: np.ndarray, boundary_ignore: int) -> PatchTargets:
        """Targets of an ``(h, w)`` instance map, with ``ignore (h, w)`` bool and the ring of
        ``boundary_ignore`` patches around the objects left out (object patches never are);
        contact patches between two objects become background."""
        instances = np.where(_contact(instances), 0, instances)
        objects = instances > 0
        ring = (scipy.ndimage.binary_dilation(objects, np.ones((3, 3), bool), iterations=boundary_ignore)
                if boundary_ignore and objects.any() else objects)
        valid = objects | ~(ignore | ring)
        return cls(objects.astype(np.float32), valid, instances.astype(np.int32))


@dataclass(frozen=True)
class ClusterEvidence:
    """A clustered LiDAR scan and where it lies in the camera.

    Attributes:
        points: ``(N, 3)`` points in the LiDAR frame (NaN rows allowed).
        labels: ``(N,)`` cluster ids ``0..C-1``, -1 for ground and noise.
        T_cam_lidar: ``(4, 4)`` LiDAR -> camera optical frame.
        camera: the camera of the image (from its CameraInfo).
    """

    points: np.ndarray
    labels: np.ndarray
    T_cam_lidar: np.ndarray
    camera: PinholeCamera

    @property
    def clusters(self) -> int:
        return int(self.labels.max()) + 1 if self.labels.size else 0


def cluster_patch_masks(evidence: ClusterEvidence, grid: tuple[int, int],
                        config: PseudoLabelConfig = PseudoLabelConfig()) -> np.ndarray:
    """``(C, h, w)`` bool: the patches of every cluster (see the module docstring).

    The token grid covers the whole image, so pixel ``(u, v)`` lies in patch
    ``(floor((v + 0.5) h / H), floor((u + 0.5) w / W))``.
    """
    h, w = grid
    camera, labels = evidence.camera, np.asarray(evidence.labels)
    count = evidence.clusters
    if count == 0:
        return np.zeros((0, h, w), bool)
    finite = np.isfinite(evidence.points).all(axis=1) & (labels >= 0)
    points = torch.as_tensor(np.where(finite[:, None], evidence.points, 0.0))
    projection = project_points(points, evidence.T_cam_lidar, camera)
    visible = projection.visible.numpy() & finite
    uv = projection.uv.numpy()[visible]
    rows = np.clip(np.floor((uv[:, 1] + 0.5) * h / camera.height), 0, h - 1).astype(np.int64)
    cols = np.clip(np.floor((uv[:, 0] + 0.5) * w / camera.width), 0, w - 1).astype(np.int64)
    counts = np.bincount(labels[visible] * (h * w) + rows * w + cols, minlength=count * h * w)
    masks = counts.reshape(count, h, w) >= config.min_points_per_patch
    if config.closing:
        pad = config.closing
        padded = np.pad(masks, ((0, 0), (pad, pad), (pad, pad)))
        planar = np.zeros((3, 3, 3), bool)
        planar[1] = True  # each cluster's plane on its own
        closed = scipy.ndimage.binary_closing(padded, planar, iterations=pad)
        masks = closed[:, pad:pad + h, pad:pad + w]
    # One empty plane before and after: no cluster's plane touches the array border along
    # the cluster axis, so only holes open to the image border stay unfilled.
    planar = np.zeros((3, 3, 3), bool)
    planar[1, 1, :] = planar[1, :, 1] = True
    filled = scipy.ndimage.binary_fill_holes(np.pad(masks, ((1, 1), (0, 0), (0, 0))), planar)
    return filled[1:-1]


def pseudo_labels(masks: np.ndarray, scores: np.ndarray, config: PseudoLabelConfig = PseudoLabelConfig(),
                  evidence: ClusterEvidence | None = None) -> PatchTargets:
    """Round-1 targets from MaskCut masks and, when given, a clustered LiDAR scan.

    Args:
        masks: ``(K, h, w)`` bool MaskCut token masks (disjoint).
        scores: ``(K,)`` their scores.
        config: see :class:`PseudoLabelConfig`.
        evidence: the scan matched to the image, or None.

    Returns:
        :class:`PatchTargets`; objects are numbered confident masks first (in mask order),
        then clusters of their own (in cluster order).
    """
    if masks.ndim != 3 or scores.shape != (masks.shape[0],):
        raise ValueError(f"masks must be (K, h, w) with (K,) scores, got {masks.shape} and {scores.shape}")
    grid = masks.shape[1:]
    corners = masks[:, [0, 0, -1, -1], [0, -1, 0, -1]].sum(axis=1)
    confident = ((scores >= config.min_mask_score) & (masks.mean(axis=(1, 2)) <= config.max_area)
                 & (corners <= config.max_corners))
    cluster_masks = np.zeros((0, *grid), bool)
    confirmed: dict[int, int] = {}                                          # cluster -> mask
    if evidence is not None:
        cluster_masks = cluster_patch_masks(evidence, grid, config)
        camera = evidence.camera
        pixel_instances = upsample_to_instances(masks, camera.height, camera.width)
        confirmed = {o.cluster: o.instance - 1 for o in confirm_objects(
            evidence.points, evidence.labels, pixel_instances, evidence.T_cam_lidar, camera, config.fusion)}
        confident[list(confirmed.values())] = True
    instances = np.zeros(grid, np.int32)
    mask_ids = np.zeros(masks.shape[0], np.int32)
    for k in np.flatnonzero(confident):
        mask_ids[k] = instances.max() + 1
        instances[masks[k] & (instances == 0)] = mask_ids[k]
    for c, k in confirmed.items():
        instances[cluster_masks[c] & (instances == 0)] = mask_ids[k]
    for c in range(cluster_masks.shape[0]):
        free = cluster_masks[c] & (instances == 0)
        if c not in confirmed and config.min_patches <= free.sum() <= config.max_area * free.size:
            instances[free] = instances.max() + 1
    low_score = scores < config.min_mask_score
    low_score[list(confirmed.values())] = False
    unsure = masks[low_score].any(axis=0) if low_score.any() else np.zeros(grid, bool)
    return PatchTargets.from_instances(instances, unsure, config.boundary_ignore)


def targets_from_predictions(probability: np.ndarray, config: PseudoLabelConfig = PseudoLabelConfig(),
                             previous: PatchTargets | None = None) -> PatchTargets:
    """Round-2 targets from the head's ``(h, w)`` objectness probability and the round-1
    ``previous`` targets (module docstring). Positive components smaller than
    ``min_patches`` are ignored, like the unsure band."""
    if probability.ndim != 2:
        raise ValueError(f"probability must be (h, w), got {probability.shape}")
    if previous is not None and previous.grid != probability.shape:
        raise ValueError(f"previous targets are {previous.grid}, the prediction {probability.shape}")
    instances, _ = objectness_components(probability, config.high, config.min_patches)
    predicted = instances > 0
    if previous is not None:
        for k in range(1, int(previous.instances.max()) + 1):
            patches = previous.instances == k
            if patches.any() and (patches & predicted).sum() < config.keep_overlap * patches.sum():
                instances[patches & (instances == 0)] = instances.max() + 1
    unsure = ~(probability <= config.low) & (instances == 0)
    return PatchTargets.from_instances(instances, unsure, 0)


def _contact(instances: np.ndarray) -> np.ndarray:
    """``(h, w)`` bool: object patches with a 4-neighbour that belongs to another object."""
    padded = np.pad(instances, 1)
    centre = padded[1:-1, 1:-1]
    contact = np.zeros(instances.shape, bool)
    for neighbour in (padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]):
        contact |= (neighbour > 0) & (centre > 0) & (neighbour != centre)
    return contact


def box_targets(instances: np.ndarray) -> np.ndarray:
    """``(4, h, w)`` float32 log distances (left, top, right, bottom, in patches) from each
    patch centre to its object's bounding box on the grid; NaN on background patches."""
    h, w = instances.shape
    count = int(instances.max())
    boxes = np.full((count + 1, 4), np.nan, np.float32)                     # x0, y0, x1, y1
    for k, found in enumerate(scipy.ndimage.find_objects(instances), start=1):
        if found is not None:
            rows, cols = found
            boxes[k] = (cols.start, rows.start, cols.stop, rows.stop)
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    box = boxes[instances]                                                  # (h, w, 4)
    distances = np.stack([cols - box[..., 0], rows - box[..., 1], box[..., 2] - cols, box[..., 3] - rows])
    return np.log(distances)
