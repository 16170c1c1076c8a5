"""A graph benchmark's results as JSON (numbers, null for unmeasured) and as markdown."""

from __future__ import annotations

import math
import platform
from dataclasses import asdict
from datetime import datetime, timezone

import psutil

from kestrel_tools.graph_bench.runner import (
    MIN_TRIAL_FRAMES,
    SINGLE_FRAME_SAMPLES,
    GraphBenchResult,
    MeasuredTrial,
)


def _finite(value: object) -> object:
    """NaN -> None, recursively, so the JSON is standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def trial_dict(measured: MeasuredTrial) -> dict[str, object]:
    trial = measured.trial
    return {
        "rate_hz": trial.rate_hz,
        "achieved_rate_hz": trial.achieved_rate_hz,
        "sent": trial.sent,
        "drop_fraction": trial.drop_fraction,
        "miss_fraction": trial.miss_fraction,
        "topics": {t.topic: {"received": t.received, "dropped": t.dropped, "late": t.late,
                             "drop_fraction": t.drop_fraction, "miss_fraction": t.miss_fraction,
                             "latency_ms": asdict(t.latency)}
                   for t in trial.topics},
        "resources": asdict(measured.resources),
    }


def result_dict(result: GraphBenchResult) -> dict[str, object]:
    """The JSON document of ``kestrel bench-graph --json``."""
    config = result.config
    peak = None
    if result.peak is not None:
        peak = {"max_drop": config.peak.max_drop, "peak_hz": result.peak.peak_hz,
                "failed_hz": result.peak.failed_hz, "trial_duration_s": config.trial_duration_s,
                "trials": [trial_dict(t) for t in result.peak_trials]}
    return _finite({
        "node": config.node,
        "command": result.command,
        "params": result.params,
        "size": [config.width, config.height],
        "qos": {"reliability": "reliable", "depth": config.qos_depth},
        "outputs": result.outputs,
        "idle_rss_mb": result.idle_rss_mb,
        "single_frame_ms": result.single_frame_ms,
        "grace_s": result.grace_s,
        "fixed_rate": {"duration_s": config.duration_s, **trial_dict(result.fixed_rate)},
        "peak": peak,
        "machine": {"platform": platform.platform(), "cpus": psutil.cpu_count(),
                    "written_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    })


def _ms(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.1f}"


def markdown_lines(result: GraphBenchResult) -> list[str]:
    """A table per output topic at the fixed rate, then the peak search, as markdown."""
    config, fixed = result.config, result.fixed_rate
    res = fixed.resources
    lines = [
        f"Node `{config.node}` at {config.width}x{config.height}, RELIABLE QoS depth "
        f"{config.qos_depth}; inputs stamped at send time, latency = receive time - stamp. "
        f"One frame sent alone to the idle node: {result.single_frame_ms:.0f} ms to its last "
        f"output (median of {SINGLE_FRAME_SAMPLES}). "
        f"An answer is late if it comes more than {result.grace_s:.1f} s after the trial's last "
        "frame was sent (twice the single-frame time, at least 1 s); dropped = never answered.",
        "",
        f"Fixed rate {config.rate_hz:g} Hz for {config.duration_s:g} s "
        f"({fixed.trial.sent} frames sent, achieved {fixed.trial.achieved_rate_hz:.2f} Hz):",
        "",
        "| output | received | dropped | late | latency median ms | p90 ms | max ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for topic in fixed.trial.topics:
        lines.append(f"| `{topic.topic}` | {topic.received} | {topic.dropped} "
                     f"({topic.drop_fraction:.0%}) | {topic.late} | {_ms(topic.latency.median_ms)} | "
                     f"{_ms(topic.latency.p90_ms)} | {_ms(topic.latency.max_ms)} |")
    lines += ["", f"Node process while fed at {config.rate_hz:g} Hz: CPU {res.cpu_percent_mean:.0f} % "
              f"mean / {res.cpu_percent_max:.0f} % max (100 % = one core), RSS "
              f"{res.rss_mb_mean:.0f} MiB mean / {res.rss_mb_max:.0f} MiB max "
              f"(idle after warm-up {result.idle_rss_mb:.0f} MiB)."]
    if result.peak is not None:
        lines += ["", *peak_lines(result)]
    return lines


def peak_lines(result: GraphBenchResult) -> list[str]:
    peak, config = result.peak, result.config
    threshold = f"{config.peak.max_drop:.0%} dropped or late"
    if peak.peak_hz is None:
        verdict = f"no rate tried down to {config.peak.min_hz:g} Hz stayed under {threshold}"
    elif peak.failed_hz is None:
        verdict = f"at least **{peak.peak_hz:.2f} Hz** (the highest rate tried) with < {threshold}"
    else:
        verdict = (f"**{peak.peak_hz:.2f} Hz** with < {threshold} "
                   f"({peak.failed_hz:.2f} Hz missed more)")
    lines = [f"Peak sustainable input rate: {verdict}; {config.trial_duration_s:g} s "
             f"(at least {MIN_TRIAL_FRAMES} frames) per trial.", "",
             "| trial rate Hz | achieved Hz | sent | dropped | dropped or late | median latency ms "
             "(first output) | CPU % mean | RSS MiB max |",
             "|---|---|---|---|---|---|---|---|"]
    for measured in result.peak_trials:
        trial, res = measured.trial, measured.resources
        first = trial.topics[0].latency.median_ms if trial.topics else float("nan")
        lines.append(f"| {trial.rate_hz:.2f} | {trial.achieved_rate_hz:.2f} | {trial.sent} | "
                     f"{trial.drop_fraction:.1%} | {trial.miss_fraction:.1%} | {_ms(first)} | "
                     f"{res.cpu_percent_mean:.0f} | {res.rss_mb_max:.0f} |")
    return lines
