"""The bench run folder: markdown tables as JSON rows and a plot per timed table."""

import json

import cv2

from kestrel_tools.reports.markdown_tables import tables_by_section, write_markdown_run_folder

REPORT = """# Benchmarks

## Stereo matching

| input | method | ms/frame (median) | bad-2.0 |
|---|---|---|---|
| 640x480 | OpenCV | 45 | 28.29% |
| 640x480 | Kestrel | 212 | 15.63% |

Targets: none.

## Mapping

| Method | ATE (m) |
|---|---|
| raw | 233.66 |
""".splitlines()


def test_tables_are_rows_under_their_section():
    sections = tables_by_section(REPORT)
    assert sections == {
        "Stereo matching": [[
            {"input": "640x480", "method": "OpenCV", "ms/frame (median)": "45", "bad-2.0": "28.29%"},
            {"input": "640x480", "method": "Kestrel", "ms/frame (median)": "212", "bad-2.0": "15.63%"},
        ]],
        "Mapping": [[{"Method": "raw", "ATE (m)": "233.66"}]],
    }


def test_run_folder_has_the_report_the_rows_and_a_plot_of_each_timed_table(tmp_path):
    report = write_markdown_run_folder(REPORT, tmp_path)
    text = report.read_text()
    assert "\n".join(REPORT) in text and "![stereo-matching-1.png](stereo-matching-1.png)" in text
    assert json.loads((tmp_path / "results.json").read_text()) == tables_by_section(REPORT)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["stereo-matching-1.png"]  # no ms in Mapping
    image = cv2.imread(str(tmp_path / "stereo-matching-1.png"))
    assert image is not None and image.shape[1] == 800
    # Two bars: the longer one (212 ms) has more bar-coloured pixels in its row band.
    bar = (image[..., 0] > 150) & (image[..., 1] < 140) & (image[..., 2] < 90)  # matplotlib blue
    rows = bar.sum(axis=1)
    bands = [r for r in range(len(rows)) if rows[r] > 0]
    assert bands, "no bars drawn"
    assert rows.max() > 3 * rows[rows > 0].min()
