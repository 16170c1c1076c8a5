"""``kestrel train ssl``: exact resume, DistributedDataParallel with gloo on two CPU
processes, and the command line (outputs and one-line errors)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from kestrel_core.features.checkpoint import load_checkpoint_model
from kestrel_tools.cli import main
from kestrel_tools.paths import data_dir
from kestrel_tools.training import FrameSource
from kestrel_tools.training.ssl import (SSLTrainConfig, SSLTrainer, join_process_group,
                                        load_frame_pool, read_log)

TREE = data_dir() / "frames" / "tree.avi"


def _config(method: str, **changes) -> SSLTrainConfig:
    values = dict(method=method, arch="cnn_small", steps=3, batch=4, view_size=24,
                  frame_height=48, frame_width=64, frame_stride=10, warmup_steps=1)
    return SSLTrainConfig(**{**values, **changes})


@pytest.fixture(scope="module")
def tree() -> FrameSource:
    if not TREE.is_file():
        pytest.skip(f"real video not found: {TREE} (set KESTREL_DATA_DIR)")
    return FrameSource("video", TREE)


@pytest.mark.parametrize("method", ["dino", "moco", "simclr"])
def test_resume_takes_the_same_next_step(method: str, tree: FrameSource,
                                         tmp_path: Path) -> None:
    config = _config(method)
    pool = load_frame_pool([tree], config)
    device = torch.device("cpu")
    straight = SSLTrainer(config, pool, device)
    straight.train_step()
    straight.train_step()
    torch.save(straight.state_dict(), tmp_path / "checkpoint.pt")  # the run goes on
    third_loss = straight.train_step()

    resumed = SSLTrainer(config, pool, device)  # a new process would start like this
    resumed.load_state_dict(torch.load(tmp_path / "checkpoint.pt", weights_only=True))
    assert resumed.step == 2
    assert resumed.train_step() == third_loss
    expected = straight.objective.state_dict()
    for name, value in resumed.objective.state_dict().items():
        assert torch.equal(value, expected[name]), name


def test_resume_refuses_another_method(tree: FrameSource) -> None:
    pool = load_frame_pool([tree], _config("moco"))
    state = SSLTrainer(_config("moco"), pool, torch.device("cpu")).state_dict()
    with pytest.raises(ValueError, match="method"):
        SSLTrainer(_config("simclr"), pool, torch.device("cpu")).load_state_dict(state)


def _ddp_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world),
                      RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    device = torch.device("cpu")
    shard = join_process_group(device)
    try:
        result = {"backend": dist.get_backend()}
        for method in ("dino", "moco"):
            config = _config(method)
            pool = load_frame_pool([FrameSource("video", TREE)], config, shard)
            trainer = SSLTrainer(config, pool, device, shard)
            initial = {k: v.clone() for k, v in trainer.objective.state_dict().items()}
            trainer.train_step()
            result[method] = {"initial": initial, "after": trainer.objective.state_dict(),
                              "frames": pool.images.clone()}
        torch.save(result, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_ddp_gloo_two_processes_stay_identical(tree: FrameSource, tmp_path: Path) -> None:
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert ranks[0]["backend"] == "gloo"
    for method in ("dino", "moco"):
        first, second = ranks[0][method], ranks[1][method]
        # Each rank trains on its own half of the frames (DistributedSampler-style) ...
        assert not torch.equal(first["frames"][0], second["frames"][0])
        # ... yet, after a step, every parameter and buffer (teacher, centre, queue) agrees.
        for name, value in first["after"].items():
            assert torch.allclose(value.float(), second["after"][name].float(), atol=1e-6), name
        assert not torch.equal(first["after"]["backbone.head.weight"],
                               first["initial"]["backbone.head.weight"])
    # The MoCo queue holds the keys of both ranks: 2 x batch 4 new entries.
    assert int(ranks[0]["moco"]["after"]["queue.pointer"]) == 8


def _kestrel(capsys, *argv: str) -> tuple[int, str]:
    code = main(["train", "ssl", *argv])
    return code, capsys.readouterr().err


def test_cli_trains_writes_a_feature_checkpoint_and_resumes(tree: FrameSource, tmp_path: Path,
                                                            capsys) -> None:
    common = ["--method", "simclr", "--batch", "4", "--view-size", "24", "--frame-stride",
              "20", "--video", str(TREE), "--out", str(tmp_path)]
    assert _kestrel(capsys, *common, "--steps", "2")[0] == 0
    model = load_checkpoint_model(tmp_path / "backbone.pt", "cpu")
    features = model.dense(torch.rand(1, 3, 32, 48))
    assert features.shape == (1, model.embed_dim, 4, 6)
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _kestrel(capsys, *common, "--steps", "3", "--resume")[0] == 0
    log = read_log(tmp_path / "log.csv")
    assert log["step"].tolist() == [2, 3]
    assert all(value > 0 for value in log["loss"])
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 3


@pytest.mark.parametrize("argv, message", [
    (["--out", "X"], "no training data"),
    (["--out", "X", "--video", "/nonexistent/clip.avi"], "no such video file"),
    (["--out", "X", "--video", "V", "--steps", "0"], "steps must be at least 1"),
    (["--out", "EMPTY", "--video", "V", "--resume"], "no "),
])
def test_cli_errors_are_one_line(argv: list[str], message: str, tmp_path: Path, capsys) -> None:
    argv = [str(tmp_path / "empty") if a == "EMPTY" else str(TREE) if a == "V" else a
            for a in argv]
    code, err = _kestrel(capsys, *argv)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("kestrel train: error:")
    assert message in err


def test_cli_rejects_an_unknown_method(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "ssl", "--method", "byol", "--out", "X", "--video", "V"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1
