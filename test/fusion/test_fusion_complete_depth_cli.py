"""``kestrel complete-depth``: files in, the core's completion out, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from kestrel_core.fusion import complete_depth_classical
from kestrel_core.fusion.guided_completion import complete_depth_guided
from kestrel_core.fusion.occlusion import remove_occluded_points
from kestrel_core.fusion.learned_completion import CompletionNetConfig, DepthCompletionNet, save_completion_model
from kestrel_tools.benchmarks.fusion import nearest_fill
from kestrel_tools.cli import main
from kestrel_tools.image_io import write_rgb_png
from kestrel_tools.training.depth_completion import simulated_sparse_depth


@pytest.fixture(scope="module")
def files(motorcycle, tmp_path_factory):
    camera, depth = motorcycle
    folder = tmp_path_factory.mktemp("complete_depth")
    grey = np.clip(50 * np.nan_to_num(depth, nan=0.0), 0, 255).astype(np.uint8)  # edges where depth jumps
    image = np.repeat(grey[..., None], 3, axis=2)
    write_rgb_png(folder / "image.png", image)
    sparse = simulated_sparse_depth(depth, camera, 32)
    np.save(folder / "sparse.npy", sparse)
    # the same scan as camera-frame points (x right, y down, z forward)
    rows, cols = np.nonzero(np.isfinite(sparse))
    z = sparse[rows, cols]
    points = np.column_stack(((cols - camera.cx) * z / camera.fx, (rows - camera.cy) * z / camera.fy, z))
    np.save(folder / "points.npy", points.astype(np.float32))
    return folder, camera, depth, sparse, image


def test_classic_on_depth_image_and_on_points_equals_the_core(files, capsys):
    folder, camera, depth, sparse, image = files
    expected, _ = complete_depth_guided(sparse, image)
    assert main(["complete-depth", str(folder / "image.png"), str(folder / "sparse.npy"),
                 "--out", str(folder / "a.npy"), "--confidence-out", str(folder / "c.npy")]) == 0
    np.testing.assert_array_equal(np.load(folder / "a.npy"), expected)
    confidence = np.load(folder / "c.npy")
    kept, _ = remove_occluded_points(sparse)  # the guided method drops see-through points
    assert (confidence[np.isfinite(kept)] == 1).all() and confidence.max() <= 1
    assert main(["complete-depth", str(folder / "image.png"), str(folder / "points.npy"),
                 "--fx", str(camera.fx), "--fy", str(camera.fy), "--cx", str(camera.cx),
                 "--cy", str(camera.cy), "--out", str(folder / "b.npy")]) == 0
    from_points = np.load(folder / "b.npy")
    np.testing.assert_allclose(from_points, expected, rtol=1e-4)
    known = np.isfinite(depth)

    def rmse(dense):
        return np.sqrt(np.mean((dense[known] - depth[known]) ** 2))

    assert rmse(from_points) < rmse(nearest_fill(sparse))  # better than the trivial fill
    assert "method=classic" in capsys.readouterr().out


def test_morphological_method_equals_the_core(files, tmp_path):
    folder, camera, depth, sparse, image = files
    assert main(["complete-depth", str(folder / "image.png"), str(folder / "sparse.npy"), "--method",
                 "morphological", "--out", str(tmp_path / "m.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "m.npy"), complete_depth_classical(sparse)[0])


def test_learned_with_an_explicit_model(files, tmp_path):
    folder, camera, depth, sparse, image = files
    model = save_completion_model(tmp_path / "m.pt", DepthCompletionNet(CompletionNetConfig(base_channels=4, levels=2)))
    assert main(["complete-depth", str(folder / "image.png"), str(folder / "sparse.npy"), "--method", "learned",
                 "--model", str(model), "--out", str(tmp_path / "l.npy")]) == 0
    dense = np.load(tmp_path / "l.npy")
    kept, _ = remove_occluded_points(sparse)
    measured = np.isfinite(kept)
    np.testing.assert_array_equal(dense[measured], sparse[measured])
    assert np.isfinite(dense).all()


@pytest.mark.parametrize("case, message", [
    ("points_without_intrinsics", "--fx"),
    ("wrong_shape", "must be a"),
    ("bad_suffix", "must end in .npy"),
    ("empty", "no valid depth"),
])
def test_errors_are_one_line(files, tmp_path, capsys, case, message):
    folder, camera, depth, sparse, image = files
    sparse_path, out = folder / "sparse.npy", tmp_path / "o.npy"
    extra = []
    if case == "points_without_intrinsics":
        sparse_path = folder / "points.npy"
    elif case == "wrong_shape":
        sparse_path = tmp_path / "w.npy"
        np.save(sparse_path, np.ones((5, 7), np.float32))
    elif case == "bad_suffix":
        out = tmp_path / "o.txt"
    elif case == "empty":
        sparse_path = tmp_path / "e.npy"
        np.save(sparse_path, np.full(sparse.shape, np.nan, np.float32))
    assert main(["complete-depth", str(folder / "image.png"), str(sparse_path), "--out", str(out), *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
