"""``kestrel train flow``: unsupervised training of the learned flow network on recordings."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from kestrel_core.device import resolve_device
from kestrel_core.flow.learned import AffinePairConfig
from kestrel_tools.training import add_source_arguments, sources_from_args
from kestrel_tools.training.flow import FlowTrainingConfig, train_flow
from kestrel_tools.training.flow_pairs import PairSampler, consecutive_pairs, folder_pairs
from kestrel_tools.training.flow_teacher import TEACHERS, cached_teacher_flows
from kestrel_tools.training.frames import FrameSource, rows_by_columns


def add_parser(tasks: argparse._SubParsersAction) -> None:
    parser = tasks.add_parser(
        "flow", help="learned optical flow, without labels",
        description="Train Kestrel's coarse-to-fine flow network with the unsupervised loss "
                    "(photometric SSIM+L1, forward-backward occlusion masks, edge-aware "
                    "smoothness, crop consistency). Consecutive frames of each video, bag "
                    "topic or image folder are the pairs; --pair-folder adds folders whose "
                    "images go two by two (e.g. rectified left/right pairs). --teacher adds "
                    "distillation from a classical flow computed on the same pairs (no labels).")
    add_source_arguments(parser)
    parser.add_argument("--pair-folder", type=Path, action="append", default=[],
                        help="a folder of images taken two by two in name order (repeatable)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder: flow.pt, log.csv, state.pt")
    parser.add_argument("--steps", type=int, default=FlowTrainingConfig.steps)
    parser.add_argument("--batch", type=int, default=FlowTrainingConfig.batch)
    parser.add_argument("--crop", type=rows_by_columns, default=FlowTrainingConfig.crop,
                        help="training crop, ROWSxCOLS (default 192x256)")
    parser.add_argument("--learning-rate", type=float, default=FlowTrainingConfig.learning_rate)
    parser.add_argument("--occlusion-start", type=int, default=FlowTrainingConfig.occlusion_start,
                        help="step from which occlusion masks and crop consistency apply")
    parser.add_argument("--consistency-weight", type=float,
                        default=FlowTrainingConfig.consistency_weight,
                        help="weight of the crop-consistency term (0 turns it off)")
    parser.add_argument("--synthetic-weight", type=float, default=FlowTrainingConfig.synthetic_weight,
                        help="weight of the known-affine-warp term (0 turns it off)")
    parser.add_argument("--still-share", type=float, default=AffinePairConfig.still_share,
                        help="share of the known-warp pairs left unwarped (zero flow)")
    parser.add_argument("--objects", type=int, default=AffinePairConfig.objects,
                        help="moving patches pasted on each known-warp pair (motion boundaries "
                             "and occlusions with known flow)")
    parser.add_argument("--teacher", choices=sorted(TEACHERS),
                        help="distil this classical method's flows of the training pairs, kept "
                             "where its forward-backward check passes (default: off); they are "
                             "cached in OUT/teacher")
    parser.add_argument("--teacher-weight", type=float, default=1.0,
                        help="weight of the distillation term (with --teacher)")
    parser.add_argument("--teacher-power", type=float, default=FlowTrainingConfig.teacher_power,
                        help="exponent q of its penalty (|e| + 0.01)^q (1: endpoint error)")
    parser.add_argument("--frame-gap", type=int, action="append",
                        help="pair frame t with frame t + GAP of the same recording; repeat "
                             "for several gaps (default 1)")
    parser.add_argument("--frame-stride", type=int, default=1, help="keep every N-th frame")
    parser.add_argument("--max-frames", type=int, default=None, help="frames kept per recording")
    parser.add_argument("--max-side", type=int, default=640, help="shrink frames to this side")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/state.pt")
    parser.add_argument("--init", type=Path, help="start from this flow checkpoint")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    resolve_device(args.device)
    config = FlowTrainingConfig(steps=args.steps, batch=args.batch, crop=args.crop,
                                learning_rate=args.learning_rate,
                                occlusion_start=args.occlusion_start,
                                consistency_weight=args.consistency_weight,
                                synthetic_weight=args.synthetic_weight,
                                teacher_weight=args.teacher_weight if args.teacher else 0.0,
                                teacher_power=args.teacher_power, seed=args.seed,
                                synthetic=AffinePairConfig(still_share=args.still_share,
                                                           objects=args.objects))
    sources = _sources(args)
    pairs = []
    for gap in args.frame_gap or [1]:
        pairs += consecutive_pairs(sources, gap, stride=args.frame_stride, max_frames=args.max_frames,
                                   max_side=args.max_side) if sources else []
    for folder in args.pair_folder:
        pairs += folder_pairs(folder, args.max_side)
    if not pairs:
        raise ValueError("no training pairs: give --video, --bag, --images or --pair-folder")
    teachers = None
    if args.teacher:
        started = time.perf_counter()
        teachers = cached_teacher_flows(pairs, args.out / "teacher", args.teacher,
                                        progress=_teacher_progress)
        print(f"teacher flows ready in {time.perf_counter() - started:.0f} s", flush=True)
    sampler = PairSampler(pairs, config.crop, seed=config.seed, teachers=teachers)
    print(f"training on {len(sampler)} pairs for {config.steps} steps", flush=True)
    record = {"command": " ".join(["kestrel", *sys.argv[1:]]) if sys.argv else "",
              "sources": [str(s.path) + (f" {s.topic}" if s.topic else "") for s in sources]
              + [str(f) for f in args.pair_folder]}

    def report(step: int, losses: dict[str, float]) -> None:
        print(f"step {step}: loss {losses['total']:.4f} photometric {losses['photometric']:.4f} "
              f"teacher {losses['teacher']:.4f} visible {losses['visible']:.2f}", flush=True)

    path = train_flow(sampler, config, args.out, args.device, resume=args.resume,
                      init=args.init, record=record, progress=report)
    print(f"wrote {path}")
    return 0


def _teacher_progress(done: int, total: int) -> None:
    if done % 10 == 0 or done == total:
        print(f"teacher flows: {done}/{total} pairs", flush=True)


def _sources(args: argparse.Namespace) -> list[FrameSource]:
    if not (args.video or args.bag or args.images):
        return []
    return sources_from_args(args)
