"""The fusion bench section's target lines: ratios computed from the rows, met / missed."""

from __future__ import annotations

import pytest

from kestrel_tools.benchmarks.fusion import GUIDED, LEARNED, NEAREST, target_lines


def rows(nearest_rmse: float, guided: tuple[float, float], learned: tuple[float, float]) -> list[dict]:
    def row(method: str, all_errors: tuple[float, float], held_out: tuple[float, float]) -> dict:
        return {"beams": 32, "method": method, "density": 0.015, "all": all_errors, "held_out": held_out}

    return [row(NEAREST, (nearest_rmse, 0.07), (nearest_rmse, 0.07)), row(GUIDED, guided, guided),
            row(LEARNED, learned, learned)]


@pytest.mark.parametrize("guided_rmse, met", [(0.14, True), (0.18, False)])
def test_target_one_is_the_rmse_gain_over_nearest(guided_rmse, met):
    first, _ = target_lines(rows(0.25, (guided_rmse, 0.04), (0.1, 0.03)))
    assert f"{1 - guided_rmse / 0.25:.1%} lower" in first and "<= 0.1750 m" in first
    assert first.endswith("**met**.") == met and first.endswith("**missed**.") != met


@pytest.mark.parametrize("learned, met", [((0.14, 0.039), True), ((0.14, 0.041), False), ((0.151, 0.03), False)])
def test_target_two_needs_both_rmse_and_mae_lower(learned, met):
    _, second = target_lines(rows(0.25, (0.15, 0.04), learned))
    assert f"{1 - learned[0] / 0.15:+.1%} lower" in second
    assert second.endswith("**met**.") == met
