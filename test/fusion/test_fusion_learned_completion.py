"""Learned depth completion: the network's closed-form start, checkpoints, the loss, a few
training steps, and the shipped model against the guided classical method (its prefill) on
held-out columns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kestrel_core.fusion.guided_completion import complete_depth_guided
from kestrel_core.fusion.learned_completion import (
    CompletionNetConfig,
    DepthCompletionNet,
    complete_depth_learned,
    depth_completion_loss,
    load_completion_model,
    prefill_depth,
    save_completion_model,
)
from kestrel_core.weights import shipped_weights


def random_sparse(height: int, width: int, density: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sparse = rng.uniform(2.0, 6.0, (height, width)).astype(np.float32)
    sparse[rng.random((height, width)) > density] = np.nan
    return sparse


def test_untrained_network_returns_the_prefill_and_keeps_measurements():
    sparse = random_sparse(37, 51, 0.05)  # sizes that are not multiples of 2^levels
    image = np.random.default_rng(1).integers(0, 256, (37, 51, 3), dtype=np.uint8)
    model = DepthCompletionNet(CompletionNetConfig(base_channels=4, levels=2)).eval()
    dense, confidence = complete_depth_learned(image, sparse, model)
    kept, prefill, _ = prefill_depth(sparse, image)  # kept: without the occlusion test's rejects
    assert 0 < np.isfinite(kept).sum() < np.isfinite(sparse).sum()  # random depths: some rejected
    measured = np.isfinite(kept)
    np.testing.assert_array_equal(dense[measured], sparse[measured])
    np.testing.assert_allclose(dense[~measured], prefill[~measured], rtol=1e-6)
    assert (confidence[measured] == 1).all()
    np.testing.assert_allclose(confidence[~measured], 1 / (1 + np.exp(-2.0)), rtol=1e-6)


def test_residual_is_gated_by_the_prefill_confidence():
    torch.manual_seed(0)
    model = DepthCompletionNet(CompletionNetConfig(base_channels=4, levels=2)).eval()
    with torch.no_grad():
        model.head.weight.normal_(std=0.5)
        model.head.bias.fill_(0.3)
    image = torch.rand(1, 3, 24, 32)
    sparse = torch.full((1, 1, 24, 32), float("nan"))
    sparse[..., ::6, ::4] = 3.0
    prefill = torch.full((1, 1, 24, 32), 3.0)
    prefill_confidence = torch.ones(1, 1, 24, 32)
    prefill_confidence[..., 10:20, 5:25] = 0.0  # the prefill is unsure here only
    with torch.inference_mode():
        depth, _ = model(image, sparse, prefill, prefill_confidence)
    sure = prefill_confidence == 1
    torch.testing.assert_close(depth[sure], prefill[sure])  # reliable prefill left untouched
    unsure = ~sure & ~torch.isfinite(sparse)
    assert (depth[unsure] - 3.0).abs().min() > 0  # corrected where the prefill is unsure


def test_empty_input_and_bad_shapes():
    model = DepthCompletionNet(CompletionNetConfig(base_channels=4, levels=1)).eval()
    dense, confidence = complete_depth_learned(np.zeros((8, 8, 3), np.uint8), np.full((8, 8), np.nan), model)
    assert np.isnan(dense).all() and (confidence == 0).all()
    with pytest.raises(ValueError):
        complete_depth_learned(np.zeros((8, 9, 3), np.uint8), np.ones((8, 8)), model)
    with pytest.raises(ValueError):
        model(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), torch.ones(1, 1, 8, 8), torch.ones(1, 1, 8, 8))


def test_checkpoint_round_trip_is_strict(tmp_path):
    model = DepthCompletionNet(CompletionNetConfig(base_channels=4, levels=2))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_()
    path = save_completion_model(tmp_path / "m.pt", model, {"note": "test"})
    loaded = load_completion_model(path)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["state_dict"]["extra.weight"] = torch.zeros(1)
    torch.save(checkpoint, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="unexpected"):
        load_completion_model(tmp_path / "bad.pt")
    with pytest.raises(OSError):
        load_completion_model(tmp_path / "missing.pt")
    torch.save({"format": "other"}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError):
        load_completion_model(tmp_path / "foreign.pt")


def test_loss_is_scaled_l1_on_held_out_points_only():
    target = torch.full((1, 1, 4, 4), float("nan"))
    target[0, 0, 1, 1], target[0, 0, 2, 3] = 2.0, 4.0
    depth = torch.full((1, 1, 4, 4), 3.0, requires_grad=True)
    confidence = torch.full((1, 1, 4, 4), 0.5)
    image = torch.zeros(1, 3, 4, 4)
    losses = depth_completion_loss(depth, confidence, target, image, smoothness_weight=0.0, tolerance=0.05)
    assert losses["depth"].item() == pytest.approx((1.0 + 1.0) / 2 / 3.0)  # mean |error| / mean target
    assert losses["smoothness"].item() == 0.0  # constant depth
    assert losses["confidence"].item() == pytest.approx(np.log(2), rel=1e-4)  # p = 0.5, all wrong
    losses["total"].backward()
    assert depth.grad[0, 0, 1, 1] > 0 and depth.grad[0, 0, 2, 3] < 0 and depth.grad[0, 0, 0, 0] == 0


def test_a_few_training_steps_write_a_loadable_checkpoint(motorcycle, tmp_path):
    from kestrel_tools.training.depth_completion import (
        DepthCompletionTrainingConfig,
        ScanBank,
        train_depth_completion,
    )

    camera, depth = motorcycle
    image = np.random.default_rng(0).integers(0, 256, (camera.height, camera.width, 3), dtype=np.uint8)
    config = DepthCompletionTrainingConfig(steps=4, batch=2, crop=(64, 64), scans=2, log_every=2,
                                           network=CompletionNetConfig(base_channels=4, levels=2))
    bank = ScanBank(image, depth, camera, config)
    batch = bank.sample()
    assert [tuple(t.shape) for t in batch] == [(2, 3, 64, 64)] + [(2, 1, 64, 64)] * 4
    _, sparse, prefill, prefill_confidence, target = batch
    assert not (torch.isfinite(sparse) & torch.isfinite(target)).any()  # targets are held out
    measured = torch.isfinite(sparse)
    torch.testing.assert_close(prefill[measured], sparse[measured])  # the prefill keeps the input
    assert (prefill_confidence[measured] == 1).all() and (prefill_confidence[~measured] < 1).all()
    logged = []
    path = train_depth_completion(bank, config, tmp_path / "dc.pt", progress=lambda s, l: logged.append(s))
    assert logged == [2, 4]
    record = torch.load(path, weights_only=True)["training"]
    assert record["held_out_columns_from"] == 0.6 and np.isfinite(record["final_losses"]["total"])
    load_completion_model(path)


def test_ground_truth_targets_cover_every_pixel_the_input_lacks(motorcycle):
    from kestrel_tools.training.depth_completion import DepthCompletionTrainingConfig, ScanBank

    camera, _ = motorcycle
    rows, _ = np.mgrid[0 : camera.height, 0 : camera.width]
    plane = (3.0 + 0.002 * rows).astype(np.float32)  # a floor-like slope, valid everywhere
    image = np.full((camera.height, camera.width, 3), 128, np.uint8)
    config = DepthCompletionTrainingConfig(batch=2, crop=(64, 64), scans=2, targets="ground_truth")
    _, sparse, prefill, _, target = ScanBank(image, plane, camera, config).sample()
    np.testing.assert_array_equal(torch.isfinite(target).numpy(), ~torch.isfinite(sparse).numpy())
    assert float(target.nan_to_num().amax()) < 4.0 and float(target.nan_to_num(nan=9.0).amin()) >= 3.0
    with pytest.raises(ValueError, match="targets"):
        DepthCompletionTrainingConfig(targets="dense")
    with pytest.raises(ValueError, match="fov_edge_deg"):
        DepthCompletionTrainingConfig(fov_edge_deg=(20.0, 15.0))


@pytest.mark.skipif(shipped_weights("depth_completion_small") is None, reason="no shipped model")
def test_shipped_model_beats_guided_classical_on_held_out_columns(motorcycle):
    from kestrel_tools.training.depth_completion import held_out_columns, motorcycle_scene, simulated_sparse_depth

    image, depth, camera = motorcycle_scene()
    model = load_completion_model(None)
    sparse = simulated_sparse_depth(depth, camera, 32)
    columns = held_out_columns(camera.width, 0.6)
    evaluated = np.isfinite(depth) & ~np.isfinite(sparse)
    evaluated[:, : columns.start] = False
    classical, _ = complete_depth_guided(sparse, image)
    learned, confidence = complete_depth_learned(image, sparse, model)

    def errors(dense: np.ndarray) -> tuple[float, float]:
        error = dense[evaluated] - depth[evaluated]
        return float(np.sqrt(np.mean(error**2))), float(np.mean(np.abs(error)))

    print(f"\nheld-out columns, 32 beams (RMSE, MAE): guided classical {errors(classical)}, "
          f"learned {errors(learned)}")
    # the shipped model (propagation head) beats its prefill on both, by about 1 % (RMSE)
    # and 2.5 % (MAE) when trained; either alone could be luck, both together are the target
    assert errors(learned)[0] < errors(classical)[0]
    assert errors(learned)[1] < errors(classical)[1]
    error = np.abs(learned - depth)[evaluated]
    confident = confidence[evaluated] > np.median(confidence[evaluated])
    assert error[confident].mean() < error[~confident].mean()  # confidence ranks the errors


def test_targets_from_several_scans_merge_their_points(motorcycle):
    from kestrel_tools.training.depth_completion import DepthCompletionTrainingConfig, ScanBank

    camera, depth = motorcycle
    image = np.full((camera.height, camera.width, 3), 128, np.uint8)
    counts = {}
    for target_scans in (1, 3):
        config = DepthCompletionTrainingConfig(batch=8, crop=(96, 96), scans=4, target_scans=target_scans,
                                               beams=(32, 32), seed=2)
        _, sparse, _, _, target = ScanBank(image, depth, camera, config).sample()
        assert not (torch.isfinite(sparse) & torch.isfinite(target)).any()  # still held out
        counts[target_scans] = int(torch.isfinite(target).sum())
    assert counts[3] > 1.5 * counts[1]  # three scans cover more of the gaps than one
    with pytest.raises(ValueError, match="target_scans"):
        DepthCompletionTrainingConfig(scans=3, target_scans=3)
