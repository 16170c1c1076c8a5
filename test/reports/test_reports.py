"""Reports: report.md tables, results.json, and PNGs whose pixels are checked."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kestrel_core.flow import flow_to_color
from kestrel_tools.cli import main
from kestrel_tools.evaluation import Figure, TaskResult
from kestrel_tools.evaluation.runner import evaluate_bag
from kestrel_tools.image_io import read_image
from kestrel_tools.paths import data_dir
from kestrel_tools.reports import write_report

FR1_XYZ = data_dir() / "trajectories" / "freiburg1_xyz-groundtruth.txt"
RED, BLUE = (214, 39, 40), (31, 119, 180)  # the estimate and reference line colours


def known_fields() -> tuple[np.ndarray, np.ndarray]:
    """A rightward flow growing along x (left half) and a disparity ramp with a NaN corner."""
    height, width = 24, 32
    flow = np.zeros((height, width, 2), np.float32)
    flow[..., 0] = np.linspace(0.0, 4.0, width)[None, :]
    disparity = np.tile(np.linspace(0.0, 20.0, width, dtype=np.float32), (height, 1))
    disparity[:4, :4] = np.nan
    return flow, disparity


@pytest.fixture()
def report(tmp_path):
    flow, disparity = known_fields()
    result = TaskResult("stereo", summary={"bad2": 0.125, "epe": float("nan")},
                        rows=[{"stamp_ns": 7, "bad2": 0.125}],
                        figures=[Figure("flow", "flow", flow, "flow", 4.0),
                                 Figure("disparity", "disparity", disparity, "d", 20.0),
                                 Figure("error", "error", np.abs(disparity - 10), "err", 5.0)],
                        notes=["a note"])
    return write_report(tmp_path, [result], "Test report", {"bag": "x"}), flow, disparity


def test_colourizations_are_pixel_exact(report):
    path, flow, disparity = report
    np.testing.assert_array_equal(read_image(path.parent / "flow.png"), flow_to_color(flow, 4.0))
    pixels = read_image(path.parent / "disparity.png")
    assert pixels.shape == (24, 32, 3)
    assert (pixels[:4, :4] == 0).all() and (pixels[4:, 1:].sum(axis=2) > 0).all()
    # turbo: the low end is blue-violet, the high end red
    assert pixels[10, 1, 2] > pixels[10, 1, 0] and pixels[10, -1, 0] > pixels[10, -1, 2]


def test_report_tables_and_json(report):
    path, _, _ = report
    text = path.read_text()
    assert text.startswith("# Test report")
    assert "| stereo | bad2 | 0.125 |" in text and "| stereo | epe | - |" in text
    assert "| 7 | 0.125 |" in text and "![error.png](error.png)" in text
    saved = json.loads((path.parent / "results.json").read_text())
    assert saved["tasks"]["stereo"]["summary"] == {"bad2": 0.125, "epe": None}
    assert saved["tasks"]["stereo"]["figures"] == ["flow.png", "disparity.png", "error.png"]
    error_plot = read_image(path.parent / "error.png")
    assert error_plot.shape[0] > 24 and error_plot.std() > 10  # a drawn plot, not a blank


def colour_share(image: np.ndarray, colour: tuple[int, int, int]) -> float:
    return float((np.abs(image.astype(int) - colour).max(axis=2) <= 2).mean())


def test_trajectory_plot_of_an_eval_run(sample_bag, tmp_path):
    results = evaluate_bag(sample_bag, ["trajectory"])
    write_report(tmp_path, results, "t", {})
    plot = read_image(tmp_path / "trajectory_sim3.png")
    assert colour_share(plot, RED) > 0.001 and colour_share(plot, BLUE) > 0.001
    positions = results[0].figures[1].data
    assert positions.shape == (2, results[0].summary["pairs"], 3)


def test_eval_trajectory_report_option(tmp_path, capsys):
    assert main(["eval", "trajectory", str(FR1_XYZ), str(FR1_XYZ), "--report",
                 str(tmp_path)]) == 0
    assert f"report: {tmp_path / 'report.md'}" in capsys.readouterr().out
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["tasks"]["trajectory"]["summary"]["ate_rmse"] == pytest.approx(0.0, abs=1e-9)
    plot = read_image(tmp_path / "trajectory.png")
    assert colour_share(plot, RED) > 0.001  # the estimate is drawn (over the reference)
