"""``kestrel train discovery``: self-training of the object-discovery head on recordings."""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

from kestrel_core.device import resolve_device
from kestrel_core.features.checkpoint import load_feature_model
from kestrel_tools.training import add_source_arguments, iter_frames, sources_from_args
from kestrel_tools.training.discovery import (HEAD_FILE, DiscoveryTrainingConfig, TrainingFrame,
                                              bag_frames_with_scans, train_discovery)
from kestrel_tools.training.frames import FrameSource


def add_parser(tasks: argparse._SubParsersAction) -> None:
    parser = tasks.add_parser(
        "discovery", help="object-discovery head, by self-training",
        description="Train a light objectness and box head on the frozen feature model. Round 1 "
                    "learns from pseudo-labels: confident MaskCut masks and, for bags with "
                    "--points-topic, LiDAR clusters projected into the image (CameraInfo and "
                    "/tf_static from the bag). Later rounds learn from the head's own confident "
                    "predictions.")
    add_source_arguments(parser)
    parser.add_argument("--out", type=Path, required=True,
                        help=f"output folder: {HEAD_FILE}, log.csv, state.pt")
    parser.add_argument("--points-topic", help="sensor_msgs/PointCloud2 topic of the bags, matched "
                                               "to the images by header stamp")
    parser.add_argument("--camera-info-topic",
                        help="CameraInfo of the image topic (default: camera_info beside it)")
    parser.add_argument("--slop", type=float, default=0.05,
                        help="largest stamp difference in seconds of a matched scan")
    parser.add_argument("--model", type=Path,
                        help="feature checkpoint (default: the best installed feature model)")
    parser.add_argument("--rounds", type=int, default=DiscoveryTrainingConfig.rounds)
    parser.add_argument("--steps", type=int, default=DiscoveryTrainingConfig.steps,
                        help="optimiser steps per round")
    parser.add_argument("--batch", type=int, default=DiscoveryTrainingConfig.batch)
    parser.add_argument("--learning-rate", type=float, default=DiscoveryTrainingConfig.learning_rate)
    parser.add_argument("--size", type=int, default=DiscoveryTrainingConfig.size,
                        help="longer side of the model input in pixels")
    parser.add_argument("--features", choices=("keys", "dense"), default=DiscoveryTrainingConfig.features,
                        help="backbone features the head reads")
    parser.add_argument("--frame-stride", type=int, default=1,
                        help="keep every N-th frame of each video and bag topic (image folders "
                             "are read whole)")
    parser.add_argument("--max-frames", type=int, default=None,
                        help="frames kept per video and bag topic")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--resume", action="store_true", help="continue after the last finished round")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    if args.slop < 0 or args.frame_stride < 1 or (args.max_frames is not None and args.max_frames < 1):
        raise ValueError("--slop must be >= 0, --frame-stride and --max-frames >= 1")
    if args.points_topic and not args.bag:
        raise ValueError("--points-topic needs --bag")
    config = DiscoveryTrainingConfig(size=args.size, rounds=args.rounds, steps=args.steps, batch=args.batch,
                                     learning_rate=args.learning_rate, features=args.features, seed=args.seed)
    sources = sources_from_args(args)
    model = load_feature_model(args.model, device)
    print(f"feature model {model.model_id}; {len(sources)} recordings", flush=True)
    record = {"command": " ".join(["kestrel", *sys.argv[1:]]) if sys.argv else "",
              "sources": [str(s.path) + (f" {s.topic}" if s.topic else "") for s in sources],
              "points_topic": args.points_topic or "", "feature_model": model.model_id}
    frames = itertools.chain.from_iterable(_frames(source, args) for source in sources)
    path = train_discovery(frames, model, config, args.out, device, resume=args.resume, record=record,
                           progress=lambda line: print(line, flush=True))
    print(f"wrote {path}")
    return 0


def _frames(source: FrameSource, args: argparse.Namespace) -> Iterator[TrainingFrame]:
    """Training frames of one recording (stride and count limits for videos and bags only);
    bag frames carry their matched scans."""
    if source.kind == "bag" and args.points_topic:
        yield from bag_frames_with_scans(source.path, source.topic, args.points_topic, args.camera_info_topic,
                                         args.slop, args.frame_stride, args.max_frames)
        return
    folder = source.kind == "images"
    for image in iter_frames(source, stride=1 if folder else args.frame_stride,
                             max_frames=None if folder else args.max_frames):
        yield TrainingFrame(image)
