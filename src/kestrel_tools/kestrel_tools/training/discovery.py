"""Self-training of the discovery head (:mod:`kestrel_core.discovery.head`) on recordings.

Data. Frames come from videos, image folders and bag image topics
(:mod:`kestrel_tools.training.frames`). For a bag with a point-cloud topic,
:func:`bag_frames_with_scans` pairs each image with the scan nearest in header stamp (within
``slop``), the image's CameraInfo (nearest stamp on the CameraInfo topic) and the LiDAR ->
camera transform from the bag's ``/tf_static``; the scan is clustered
(:func:`~kestrel_core.discovery.clustering3d.cluster_objects`) into
:class:`~kestrel_core.discovery.pseudo_labels.ClusterEvidence`.

Labels. The backbone is frozen, so every frame's features are computed once
(:func:`label_frame`: the attention keys for MaskCut and the dense features the head reads
by default; with ``features="keys"`` one ViT pass gives both) and kept with the round-1
pseudo-labels (MaskCut masks and projected clusters,
:func:`~kestrel_core.discovery.pseudo_labels.pseudo_labels`).
Round ``r > 1`` relabels every frame with the previous round's head and the round-1
objects it misses (:func:`~kestrel_core.discovery.pseudo_labels.targets_from_predictions`)
and trains on.

Optimisation. Each step draws ``batch`` frames of one token-grid size (frames are grouped by
grid, a group chosen in proportion to its size), flips half of them left-right, and
minimises binary cross-entropy of the objectness on the non-ignored patches plus
``box_weight`` times the smooth-L1 error of the log box distances on the object patches.

``out/`` receives ``log.csv`` (round, step, losses), ``round<r>.pt`` (the head after round
``r``, to compare rounds), ``state.pt`` after every round (the head,
the rounds done; ``resume`` continues with the next round, relabelling from the stored head,
and gives the same weights as an uninterrupted run: each round seeds its own batches) and
``discovery_head.pt``: the head with its config and a training record.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from kestrel_core.checkpoints import config_record
from kestrel_core.device import resolve_device
from kestrel_core.discovery.clustering3d import ClusterConfig, GroundConfig, cluster_objects
from kestrel_core.discovery.head import DiscoveryHead, HeadConfig, head_features, save_head
from kestrel_core.discovery.maskcut import MaskCutConfig, maskcut
from kestrel_core.discovery.pipeline import as_rgb, image_tensor, model_input_size
from kestrel_core.discovery.pseudo_labels import (ClusterEvidence, PatchTargets, PseudoLabelConfig,
                                                  box_targets, pseudo_labels, targets_from_predictions)
from kestrel_core.geometry.camera import PinholeCamera

__all__ = ["DiscoveryTrainingConfig", "Scan", "TrainingFrame", "LabeledFrame", "bag_frames_with_scans",
           "label_frame", "relabel", "head_loss", "train_discovery", "HEAD_FILE"]

HEAD_FILE = "discovery_head.pt"
LOG_FIELDS = ("round", "step", "seconds", "total", "objectness", "box", "positive", "ignored")


@dataclass(frozen=True)
class DiscoveryTrainingConfig:
    """Settings of :func:`train_discovery`.

    Attributes:
        size: longer side of the model input in pixels (as at inference).
        rounds: self-training rounds (1: pseudo-labels only; 2: then the head's own labels).
        steps: optimiser steps per round.
        batch: frames per step.
        learning_rate: AdamW learning rate (cosine decay to 5 % within each round).
        weight_decay: AdamW weight decay.
        box_weight: weight of the box term.
        log_every: steps between log rows.
        seed: seeds the initial weights, the batches and the flips.
        hidden, layers, features: the head's :class:`~kestrel_core.discovery.head.HeadConfig`.
        labels, maskcut: pseudo-label and MaskCut settings.
        ground, clusters: LiDAR ground removal and clustering.
    """

    size: int = 480
    rounds: int = 2
    steps: int = 400
    batch: int = 8
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    box_weight: float = 0.5
    log_every: int = 25
    seed: int = 0
    hidden: int = 32
    layers: int = 2
    features: str = "dense"
    labels: PseudoLabelConfig = field(default_factory=PseudoLabelConfig)
    maskcut: MaskCutConfig = field(default_factory=MaskCutConfig)
    ground: GroundConfig = field(default_factory=GroundConfig)
    clusters: ClusterConfig = field(default_factory=ClusterConfig)

    def __post_init__(self) -> None:
        if min(self.size, self.rounds, self.steps, self.batch, self.log_every) < 1:
            raise ValueError("size, rounds, steps, batch and log_every must be >= 1")
        if not self.learning_rate > 0 or self.box_weight < 0 or self.weight_decay < 0:
            raise ValueError("learning_rate must be > 0, box_weight and weight_decay >= 0")


@dataclass(frozen=True)
class Scan:
    """A LiDAR scan matched to an image: ``points (N, 3)`` in the LiDAR frame, the
    ``(4, 4)`` LiDAR -> camera transform and the image's camera."""

    points: np.ndarray
    T_cam_lidar: np.ndarray
    camera: PinholeCamera


@dataclass(frozen=True)
class TrainingFrame:
    """One training image ``(H, W, 3)`` uint8 RGB and, when recorded, its scan."""

    image: np.ndarray
    scan: Scan | None = None


@dataclass(frozen=True)
class LabeledFrame:
    """A frame ready to train on: frozen features ``(C, h, w)`` float32 (CPU) and targets."""

    features: torch.Tensor
    targets: PatchTargets


# ----------------------------------------------------------------------------- data

def bag_frames_with_scans(bag: Path, image_topic: str, points_topic: str, info_topic: str | None = None,
                          slop_s: float = 0.05, stride: int = 1,
                          max_frames: int | None = None) -> Iterator[TrainingFrame]:
    """Frames of a bag image topic, each with the scan of ``points_topic`` nearest in stamp
    (None when none is within ``slop_s``).

    ``info_topic`` defaults to ``camera_info`` beside the image topic (``/a/b/image_rect``
    -> ``/a/b/camera_info``). Images keep their recorded size, which the CameraInfo
    describes.

    Raises:
        ValueError: a missing topic, no CameraInfo within ``slop_s`` of a frame with a scan,
            or no ``/tf_static`` chain between the cloud's and the camera's frames.
    """
    from kestrel_ros.compat.approximate_time import stamp_ns
    from kestrel_ros.conversions.camera_info import camera_info_to_model
    from kestrel_ros.conversions.image import image_to_numpy, to_rgb8
    from kestrel_ros.conversions.pointcloud2 import xyz_array
    from kestrel_tools.bags import open_bag
    from kestrel_tools.evaluation.tf_static import StaticTransforms

    info_topic = info_topic or image_topic.rsplit("/", 1)[0] + "/camera_info"
    slop_ns = int(slop_s * 1e9)
    with open_bag(bag) as reader:
        missing = [t for t in (image_topic, points_topic, info_topic) if t not in reader.topics]
        if missing:
            raise ValueError(f"{bag}: no topic {', '.join(missing)} "
                             f"(topics: {', '.join(sorted(reader.topics))})")
        clouds = [(stamp_ns(m.msg), m.msg.header.frame_id, xyz_array(m.msg, skip_nans=True))
                  for m in reader.messages(points_topic)]
        infos = [(stamp_ns(m.msg), m.msg) for m in reader.messages(info_topic)]
        transforms = StaticTransforms(reader) if "/tf_static" in reader.topics else None
        kept = 0
        for index, message in enumerate(reader.messages(image_topic)):
            if index % stride:
                continue
            stamp = stamp_ns(message.msg)
            image = to_rgb8(image_to_numpy(message.msg), message.msg.encoding)
            cloud = _nearest(clouds, stamp, slop_ns)
            scan = None
            if cloud is not None:
                info = _nearest(infos, stamp, slop_ns)
                if info is None:
                    raise ValueError(f"{bag}: no {info_topic} within {slop_s} s of the image at {stamp} ns")
                if transforms is None:
                    raise ValueError(f"{bag}: no /tf_static to place {points_topic} in the camera")
                camera = camera_info_to_model(info[1])
                scan = Scan(cloud[2], transforms.lookup(camera.frame_id, cloud[1]), camera)
            yield TrainingFrame(image, scan)
            kept += 1
            if max_frames is not None and kept >= max_frames:
                return


def _nearest(stamped: list[tuple], stamp: int, slop_ns: int) -> tuple | None:
    """The entry of ``(stamp_ns, ...)`` tuples nearest to ``stamp``, if within ``slop_ns``."""
    if not stamped:
        return None
    best = min(stamped, key=lambda entry: abs(entry[0] - stamp))
    return best if abs(best[0] - stamp) <= slop_ns else None


# ----------------------------------------------------------------------------- labels

def label_frame(frame: TrainingFrame, model, config: DiscoveryTrainingConfig) -> LabeledFrame:
    """Frozen features and round-1 pseudo-labels of one frame (see the module docstring)."""
    image = as_rgb(frame.image)
    height, width = image.shape[:2]
    in_h, in_w = model_input_size(height, width, config.size, model.stride)
    grid = model.grid_size(in_h, in_w)
    tensor = image_tensor(image, in_h, in_w)
    keys = head_features(model, tensor, "keys")                              # (1, D, h, w)
    cut = maskcut(keys[0].flatten(1).T, grid, config.maskcut)
    evidence = None
    if frame.scan is not None:
        scan = frame.scan
        if (scan.camera.height, scan.camera.width) != (height, width):
            raise ValueError(f"the scan's camera is {scan.camera.width}x{scan.camera.height} but "
                             f"the image is {width}x{height}")
        labels = cluster_objects(scan.points, config.ground, config.clusters)
        evidence = ClusterEvidence(scan.points, labels, scan.T_cam_lidar, scan.camera)
    targets = pseudo_labels(cut.masks, cut.score_array(), config.labels, evidence)
    features = keys if config.features == "keys" else head_features(model, tensor, config.features)
    return LabeledFrame(features[0].float().cpu().clone(), targets)


def relabel(head: DiscoveryHead, frames: list[LabeledFrame], config: DiscoveryTrainingConfig,
            device: torch.device) -> list[LabeledFrame]:
    """The frames with targets from ``head``'s confident predictions (round ``r > 1``) and
    the round-1 objects it misses; ``frames`` carry the round-1 targets."""
    head.eval()
    relabeled = []
    with torch.inference_mode():
        for frame in frames:
            logits, _ = head(frame.features[None].to(device))
            probability = torch.sigmoid(logits[0, 0]).cpu().numpy()
            relabeled.append(LabeledFrame(frame.features, targets_from_predictions(
                probability, config.labels, frame.targets)))
    return relabeled


# ----------------------------------------------------------------------------- loss and batches

def head_loss(logits: torch.Tensor, log_boxes: torch.Tensor, objectness: torch.Tensor,
              valid: torch.Tensor, box_target: torch.Tensor, box_weight: float) -> dict[str, torch.Tensor]:
    """Self-training loss of a batch.

    Args:
        logits: ``(B, 1, h, w)`` objectness logits.
        log_boxes: ``(B, 4, h, w)`` predicted log box distances.
        objectness: ``(B, 1, h, w)`` targets in ``{0, 1}``.
        valid: ``(B, 1, h, w)`` bool, False where ignored.
        box_target: ``(B, 4, h, w)`` target log distances, NaN off objects.
        box_weight: weight of the box term.

    Returns:
        ``{"total", "objectness", "box"}`` scalars.
    """
    weight = valid.float()
    bce = F.binary_cross_entropy_with_logits(logits, objectness, weight=weight, reduction="sum")
    objectness_loss = bce / weight.sum().clamp_min(1.0)
    on_object = torch.isfinite(box_target[:, :1]) & (objectness > 0.5)
    if bool(on_object.any()):
        chosen = on_object.expand_as(box_target)
        box_loss = F.smooth_l1_loss(log_boxes[chosen], box_target[chosen])
    else:
        box_loss = log_boxes.sum() * 0.0
    return {"total": objectness_loss + box_weight * box_loss, "objectness": objectness_loss, "box": box_loss}


class _Batches:
    """Random batches of frames of one grid size, half of them flipped left-right."""

    def __init__(self, frames: list[LabeledFrame], batch: int, generator: torch.Generator) -> None:
        self.groups: dict[tuple[int, int], list[int]] = {}
        for index, frame in enumerate(frames):
            self.groups.setdefault(frame.targets.grid, []).append(index)
        self.frames, self.batch, self.generator = frames, batch, generator
        self.keys = list(self.groups)
        self.sizes = torch.tensor([len(self.groups[k]) for k in self.keys], dtype=torch.float)
        self.box_targets = [torch.from_numpy(box_targets(f.targets.instances)) for f in frames]

    def draw(self) -> tuple[torch.Tensor, ...]:
        """``(features (B, C, h, w), objectness (B, 1, h, w), valid (B, 1, h, w),
        box target (B, 4, h, w))``."""
        group = self.groups[self.keys[int(torch.multinomial(self.sizes, 1, generator=self.generator))]]
        picks = torch.randint(len(group), (self.batch,), generator=self.generator)
        flips = torch.rand(self.batch, generator=self.generator) < 0.5
        parts: list[list[torch.Tensor]] = [[], [], [], []]
        for pick, flip in zip(picks.tolist(), flips.tolist()):
            frame = self.frames[group[pick]]
            targets = frame.targets
            tensors = [frame.features, torch.from_numpy(targets.objectness)[None],
                       torch.from_numpy(targets.valid)[None], self.box_targets[group[pick]]]
            if flip:
                tensors = [t.flip(-1) for t in tensors]
                tensors[3] = tensors[3][[2, 1, 0, 3]]                       # left <-> right
            for part, tensor in zip(parts, tensors):
                part.append(tensor)
        return tuple(torch.stack(part) for part in parts)


# ----------------------------------------------------------------------------- training

def train_discovery(frames: Iterable[TrainingFrame], model, config: DiscoveryTrainingConfig, out: Path,
                    device: str | torch.device = "cpu", *, resume: bool = False, record: dict | None = None,
                    progress: Callable[[str], None] | None = None) -> Path:
    """Self-train a discovery head on ``frames`` with the frozen feature ``model``.

    Args:
        frames: training frames (consumed once, while labelling).
        model: the frozen :class:`~kestrel_core.features.model.FeatureModel` (on ``device``).
        config: see :class:`DiscoveryTrainingConfig`.
        out: output folder (see the module docstring).
        device: where the head trains.
        resume: continue after the last round stored in ``out/state.pt``.
        record: extra entries of the checkpoint's training record (command, sources).
        progress: called with one line of progress text now and then.

    Returns:
        The path of ``discovery_head.pt``.
    """
    device = resolve_device(device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _line: None)
    started = time.perf_counter()
    labeled, with_scans = [], 0
    for frame in frames:
        labeled.append(label_frame(frame, model, config))
        with_scans += frame.scan is not None
        if len(labeled) % 10 == 0:
            say(f"labelled {len(labeled)} frames")
    if not labeled:
        raise ValueError("no training frames")
    label_seconds = time.perf_counter() - started
    say(f"labelled {len(labeled)} frames in {label_seconds:.0f} s; positives "
        f"{np.mean([f.targets.objectness.mean() for f in labeled]):.2f} of the patches")
    torch.manual_seed(config.seed)
    head = DiscoveryHead(HeadConfig(int(labeled[0].features.shape[0]), config.hidden, config.layers,
                                    config.features, str(getattr(model, "model_id", "")))).to(device)
    done = 0
    state_path, log_path = out / "state.pt", out / "log.csv"
    if resume and state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        head.load_state_dict(state["head"])
        done = int(state["rounds_done"])
        say(f"resuming after round {done}")
    elif log_path.exists():
        log_path.unlink()
    losses: dict[str, float] = {}
    for round_index in range(done + 1, config.rounds + 1):
        targets = relabel(head, labeled, config, device) if round_index > 1 else labeled
        generator = torch.Generator().manual_seed(config.seed * 1000 + round_index)
        losses = _train_round(head, targets, config, round_index, generator, device, log_path, say)
        torch.save({"head": {k: v.cpu() for k, v in head.state_dict().items()}, "rounds_done": round_index},
                   state_path)
        save_head(out / f"round{round_index}.pt", head, {**(record or {}), "round": round_index})
    training = {**(record or {}), "config": config_record(config), "frames": len(labeled),
                "frames_with_scans": with_scans, "seconds": round(time.perf_counter() - started, 1),
                "final_losses": losses}
    return save_head(out / HEAD_FILE, head.cpu(), training)


def _train_round(head: DiscoveryHead, frames: list[LabeledFrame], config: DiscoveryTrainingConfig,
                 round_index: int, generator: torch.Generator, device: torch.device, log_path: Path,
                 say: Callable[[str], None]) -> dict[str, float]:
    """One round of ``config.steps`` steps; appends to ``log.csv``; the last logged losses."""
    head.train()
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps,
                                                          config.learning_rate * 0.05)
    batches = _Batches(frames, config.batch, generator)
    new_log = not log_path.exists()
    started = time.perf_counter()
    logged: dict[str, float] = {}
    with log_path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, LOG_FIELDS)
        if new_log:
            writer.writeheader()
        for step in range(1, config.steps + 1):
            features, objectness, valid, box_target = (t.to(device) for t in batches.draw())
            logits, log_boxes = head(features)
            loss = head_loss(logits, log_boxes, objectness, valid, box_target, config.box_weight)
            optimizer.zero_grad(set_to_none=True)
            loss["total"].backward()
            optimizer.step()
            schedule.step()
            if step % config.log_every == 0 or step == config.steps:
                logged = {k: round(float(v.detach()), 5) for k, v in loss.items()}
                writer.writerow({"round": round_index, "step": step,
                                 "seconds": round(time.perf_counter() - started, 2), **logged,
                                 "positive": round(float(objectness.mean()), 4),
                                 "ignored": round(1.0 - float(valid.float().mean()), 4)})
                handle.flush()
                say(f"round {round_index} step {step}: loss {logged['total']:.4f} "
                    f"objectness {logged['objectness']:.4f} box {logged['box']:.4f}")
    return logged
