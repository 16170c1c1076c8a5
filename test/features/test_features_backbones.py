"""Backbones and FeatureModel: output shapes, strides, cropping and positional embeddings."""

import pytest
import torch

from features_cases import SMALL_BACKBONES, small_backbone
from kestrel_core.features import FeatureModel, build_backbone

ODD_SIZES = [(61, 83), (37, 50), (100, 29)]
STRIDES = {"vit_tiny": 16, "vit_small/8": 8, "vit_small/14": 14, "vit_small/16": 16, "cnn_small": 8}


@pytest.mark.parametrize("key", list(SMALL_BACKBONES))
@pytest.mark.parametrize("size", ODD_SIZES)
def test_forward_features_shapes_follow_the_stride(key, size):
    backbone = small_backbone(key).eval()
    assert backbone.stride == STRIDES[key]
    height, width = size
    with torch.no_grad():
        out = backbone.forward_features(torch.randn(2, 3, height, width))
    grid = (height // backbone.stride, width // backbone.stride)
    assert out["patches"].shape == (2, backbone.embed_dim, *grid)
    assert out["cls"].shape == (2, backbone.embed_dim)
    assert torch.isfinite(out["patches"]).all()


@pytest.mark.parametrize("key", list(SMALL_BACKBONES))
def test_pixels_past_the_last_full_cell_are_cropped(key):
    backbone = small_backbone(key).eval()
    stride = backbone.stride
    image = torch.randn(1, 3, 3 * stride + stride - 1, 4 * stride + 3)
    cropped = image[..., : 3 * stride, : 4 * stride]
    with torch.no_grad():
        torch.testing.assert_close(backbone.forward_features(image)["patches"],
                                   backbone.forward_features(cropped)["patches"])


@pytest.mark.parametrize("key", ["vit_tiny", "vit_small/14", "cnn_small"])
def test_image_smaller_than_the_stride_is_rejected(key):
    backbone = small_backbone(key)
    with pytest.raises(ValueError, match="smaller than the stride"):
        backbone.forward_features(torch.randn(1, 3, backbone.stride - 1, 64))


@pytest.mark.parametrize("key", ["vit_tiny", "vit_small/14"])
def test_vit_intermediate_layers_and_last_attention(key):
    backbone = small_backbone(key).eval()
    x = torch.randn(2, 3, 45, 71)
    tokens = 1 + (45 // backbone.stride) * (71 // backbone.stride)
    heads, dim = backbone.num_heads, backbone.embed_dim
    with torch.no_grad():
        layers = backbone.get_intermediate_layers(x, 2)
        kqv = backbone.last_attention_kqv(x)
        final = backbone.forward_features(x)
    assert [t.shape for t in layers] == [(2, tokens, dim)] * 2
    # The last intermediate layer is the final output: CLS first, then the patches row-major.
    torch.testing.assert_close(layers[-1][:, 0], final["cls"])
    torch.testing.assert_close(layers[-1][:, 1:].transpose(1, 2).reshape(final["patches"].shape), final["patches"])
    assert set(kqv) == {"k", "q", "v"}
    for value in kqv.values():
        assert value.shape == (2, heads, tokens, dim // heads)
    # Keys recomputed by hand from the last block's input agree.
    with torch.no_grad():
        raw, _ = backbone.tokens(x)
        for block in backbone.blocks[:-1]:
            raw = block(raw)
        qkv = backbone.blocks[-1].attn.qkv(backbone.blocks[-1].norm1(raw))
    keys = qkv[..., dim: 2 * dim].reshape(2, tokens, heads, dim // heads).transpose(1, 2)
    torch.testing.assert_close(kqv["k"], keys)
    with pytest.raises(ValueError):
        backbone.get_intermediate_layers(x, len(backbone.blocks) + 1)


def test_forward_layer_matches_the_intermediate_layer():
    backbone = small_backbone("vit_tiny").eval()
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        first = backbone.get_intermediate_layers(x, 2)[0]
        patches = backbone.forward_layer(x, 1)["patches"]
    torch.testing.assert_close(patches, first[:, 1:].transpose(1, 2).reshape(patches.shape))


def test_pos_embed_is_used_as_is_on_the_native_grid_and_resampled_elsewhere():
    backbone = build_backbone("vit_tiny", depth=1, pos_grid=6)
    assert backbone.interpolated_pos_embed(6, 6) is backbone.pos_embed
    resized = backbone.interpolated_pos_embed(4, 9)
    assert resized.shape == (1, 1 + 4 * 9, backbone.embed_dim)
    torch.testing.assert_close(resized[:, 0], backbone.pos_embed[:, 0])  # CLS entry untouched


def test_pos_embed_interpolation_preserves_a_constant_and_a_ramp_order():
    backbone = build_backbone("vit_tiny", depth=1, pos_grid=8)
    dim = backbone.embed_dim
    with torch.no_grad():
        backbone.pos_embed[:, 1:] = 0.5
        torch.testing.assert_close(backbone.interpolated_pos_embed(5, 13)[:, 1:], torch.full((1, 65, dim), 0.5))
        ramp = torch.arange(8.0).repeat(8)  # value = column index, row-major 8x8
        backbone.pos_embed[0, 1:] = ramp[:, None]
        resized = backbone.interpolated_pos_embed(3, 5)[0, 1:, 0].reshape(3, 5)
    # Every row is the same increasing ramp spanning the original range.
    torch.testing.assert_close(resized, resized[:1].expand(3, 5))
    assert torch.all(resized[0, 1:] > resized[0, :-1])
    assert 0.0 <= resized[0, 0] < 1.5 and 5.5 < resized[0, -1] <= 7.0


@pytest.mark.parametrize("key", ["vit_tiny", "cnn_small"])
def test_feature_model_normalizes_and_returns_documented_shapes(key):
    backbone = small_backbone(key)
    model = FeatureModel(backbone, "test")
    images = torch.rand(2, 3, 50, 67)
    grid = model.grid_size(50, 67)
    dense = model.dense(images)
    assert dense.shape == (2, model.embed_dim, *grid)
    assert model.embedding(images).shape == (2, model.embed_dim)
    keys = model.attention_keys(images)
    assert keys.shape == (2, grid[0] * grid[1], model.embed_dim)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        by_hand = backbone.forward_features((images - mean) / std)["patches"]
    torch.testing.assert_close(dense, by_hand)
    if key == "cnn_small":  # no attention: the keys are the flattened dense features
        torch.testing.assert_close(keys, dense.flatten(2).transpose(1, 2))


def test_feature_model_dense_layer_and_input_checks():
    backbone = small_backbone("vit_tiny")
    images = torch.rand(1, 3, 32, 48)
    model = FeatureModel(backbone, "layer1", dense_layer=1)
    with torch.no_grad():
        expected = backbone.forward_layer(model.normalize(images), 1)["patches"]
    torch.testing.assert_close(model.dense(images), expected)
    for layer in (1, None):
        layered = FeatureModel(backbone, "layered", dense_layer=layer)
        dense, embedding = layered.dense_and_embedding(images)
        torch.testing.assert_close(dense, layered.dense(images))
        torch.testing.assert_close(embedding, layered.embedding(images))
    with pytest.raises(ValueError, match="dense_layer"):
        FeatureModel(small_backbone("cnn_small"), "cnn", dense_layer=1)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model.dense(torch.rand(3, 32, 48))
    with pytest.raises(ValueError, match="float"):
        model.dense(torch.zeros(1, 3, 32, 48, dtype=torch.uint8))


def test_unknown_backbone_or_field_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("resnet50")
    with pytest.raises(ValueError, match="unknown ViTConfig fields"):
        build_backbone("vit_small", patch=8)
    with pytest.raises(ValueError, match="divisible"):
        build_backbone("vit_small", num_heads=5)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("key", ["vit_small/14", "cnn_small"])
def test_feature_model_agrees_across_dtype_and_device(key, device):
    images = torch.rand(1, 3, 42, 58)
    reference = FeatureModel(small_backbone(key), "ref").dense(images)
    model = FeatureModel(small_backbone(key), "f64").to(device, torch.float64)
    dense = model.dense(images)
    assert dense.dtype == torch.float64 and dense.device.type == device
    torch.testing.assert_close(dense.float().cpu(), reference, rtol=1e-4, atol=1e-4)
