"""The discovery head: learning planted objects, decoding to objects and boxes, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from discovery_synthetic import planted_keys
from kestrel_core.discovery.head import (DecodeConfig, DiscoveryHead, HeadConfig, HeadDiscoveryConfig,
                                         decode_objectness, discover_with_head, load_discovery_head,
                                         save_head)
from kestrel_core.discovery.pseudo_labels import box_targets
from kestrel_core.features.checkpoint import load_feature_model
from kestrel_tools.training.discovery import head_loss

GRID = (12, 16)


def planted_scene(seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """``(features (1, 32, h, w), instances (h, w))``: two rectangles planted on a background,
    every region with its own random key (another draw per seed)."""
    rng = np.random.default_rng(seed)
    instances = np.zeros(GRID, np.int32)
    top, left = rng.integers(0, 5, 2)
    instances[top:top + 4, left:left + 5] = 1
    top, left = rng.integers(6, 9), rng.integers(9, 12)
    instances[top:top + 3, left:left + 4] = 2
    regions = np.where(instances > 0, 1, 0)  # objects share a key: the head learns "object"
    keys = planted_keys(regions, dim=32, noise=0.1, seed=0)
    keys = keys + 0.1 * torch.randn(keys.shape, generator=torch.Generator().manual_seed(seed))
    return keys.T.reshape(1, 32, *GRID), instances


def test_a_few_steps_learn_planted_objects_and_their_boxes():
    scenes = [planted_scene(seed) for seed in range(4)]
    features = torch.cat([f for f, _ in scenes])
    objectness = torch.from_numpy(np.stack([i > 0 for _, i in scenes])[:, None].astype(np.float32))
    boxes = torch.from_numpy(np.stack([box_targets(i) for _, i in scenes]))
    valid = torch.ones_like(objectness, dtype=torch.bool)
    torch.manual_seed(0)
    head = DiscoveryHead(HeadConfig(in_channels=32, hidden=16))
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = head_loss(*head(features), objectness, valid, boxes, box_weight=0.5)
        optimizer.zero_grad()
        loss["total"].backward()
        optimizer.step()
        losses.append(loss["total"].item())
    assert losses[-1] < 0.3 * losses[0]
    # A scene the head never saw: objects and boxes come out right.
    test_features, truth = planted_scene(seed=11)
    with torch.no_grad():
        logits, log_boxes = head(test_features)
    masks, scores, found = decode_objectness(torch.sigmoid(logits)[0, 0].numpy(), log_boxes[0].numpy())
    assert len(masks) == 2 and (scores > 0.5).all()
    truth_boxes = {k: [c.start, r.start, c.stop, r.stop] for k in (1, 2) for r, c in [_slices(truth == k)]}
    for mask, predicted in zip(masks, found):
        k = int(np.bincount(truth[mask]).argmax())
        iou = (mask & (truth == k)).sum() / (mask | (truth == k)).sum()
        assert iou > 0.9
        np.testing.assert_allclose(predicted, truth_boxes[k], atol=1.0)


def _slices(mask: np.ndarray) -> tuple[slice, slice]:
    rows, cols = np.nonzero(mask)
    return slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)


def test_decoding_exact_outputs_gives_the_objects_and_their_boxes():
    instances = np.zeros(GRID, np.int32)
    instances[1:4, 2:6] = 1                      # 12 patches
    instances[7:11, 9:15] = 2                    # 24 patches: more mass, decoded first
    instances[10, 0] = 3                         # one patch: below min_patches
    probability = np.where(instances > 0, 0.9, 0.05).astype(np.float32)
    log_distances = np.nan_to_num(box_targets(instances), nan=0.0)
    masks, scores, boxes = decode_objectness(probability, log_distances, DecodeConfig(min_patches=2))
    np.testing.assert_array_equal(masks, np.stack([instances == 2, instances == 1]))
    np.testing.assert_allclose(scores, [0.9, 0.9], rtol=1e-6)
    np.testing.assert_allclose(boxes, [[9, 7, 15, 11], [2, 1, 6, 4]], atol=1e-5)
    empty = decode_objectness(np.zeros(GRID, np.float32), log_distances)
    assert empty[0].shape == (0, *GRID) and empty[1].shape == (0,) and empty[2].shape == (0, 4)


def test_checkpoint_round_trip_is_exact_and_strict(tmp_path):
    torch.manual_seed(1)
    head = DiscoveryHead(HeadConfig(in_channels=24, hidden=8, layers=1, feature_model="tiny-random"))
    path = save_head(tmp_path / "head.pt", head, {"frames": 3})
    loaded = load_discovery_head(path, "cpu")
    assert loaded.config == head.config and not loaded.training
    features = torch.randn(2, 24, 5, 7)
    with torch.no_grad():
        for got, want in zip(loaded(features), head(features)):
            torch.testing.assert_close(got, want, rtol=0, atol=0)
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["training"] == {"frames": 3}
    checkpoint["state_dict"]["extra.weight"] = torch.zeros(1)
    del checkpoint["state_dict"]["boxes.bias"]
    torch.save(checkpoint, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"missing \['boxes.bias'\], unexpected \['extra.weight'\]"):
        load_discovery_head(tmp_path / "bad.pt")
    torch.save({"format": "kestrel-flow/1"}, tmp_path / "flow.pt")
    with pytest.raises(ValueError, match="not a Kestrel discovery head checkpoint"):
        load_discovery_head(tmp_path / "flow.pt")
    with pytest.raises(OSError, match="no such discovery head file"):
        load_discovery_head(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="features must be"):
        head(torch.randn(1, 23, 5, 7))


def test_discover_with_head_maps_decoded_patches_to_pixels(tiny_checkpoint, device):
    model = load_feature_model(tiny_checkpoint, device)
    torch.manual_seed(0)
    head = DiscoveryHead(HeadConfig(in_channels=model.embed_dim, hidden=8)).to(device).eval()
    with torch.no_grad():  # objectness = +5 on the left half of the patch grid: a known object
        head.objectness.weight.zero_()
        head.objectness.bias.fill_(-5.0)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
    config = HeadDiscoveryConfig(size=128, decode=DecodeConfig(min_patches=1))
    found = discover_with_head(image, model, head, config)
    assert found.count == 0 and found.instances.shape == (96, 128) and not found.instances.any()
    assert found.grid == (6, 8) and found.objectness.shape == (6, 8)
    np.testing.assert_allclose(found.objectness, 1 / (1 + np.exp(5.0)), rtol=1e-5)
    with torch.no_grad():
        head.objectness.bias.fill_(5.0)
    found = discover_with_head(image, model, head, config)
    assert found.count == 1 and found.masks.all() and (found.instances == 1).all()
    assert found.boxes.shape == (1, 4) and (found.boxes[0, :2] >= 0).all()
    assert found.boxes[0, 2] <= 128 and found.boxes[0, 3] <= 96
    constant = discover_with_head(np.full((96, 128, 3), 7, np.uint8), model, head, config)
    assert constant.count == 0 and not constant.instances.any()
    with pytest.raises(ValueError, match="expects 24-channel"):
        discover_with_head(image, model, DiscoveryHead(HeadConfig(in_channels=24)).to(device), config)
