"""edge-bench's results for a person (a table, a verdict line, a latency histogram PNG)
and for a machine (one JSON object, its keys documented in docs/INTERFACES.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge.bench.stages import stage_label
from edge.machine import machine_line

SUMMARY_KEYS = ("min", "p50", "p90", "p99", "p999", "max")
MODES = ("model-rate", "per-sample")
"""edge-run's inference modes; the verdict and the top-level figures are the first's (its
default)."""
MARKED_PERCENTILES = (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9"))


def speedups(
    end_to_end_us: dict[str, float] | None, reference: dict[str, Any]
) -> dict[str, float | None]:
    """How many times the end-to-end answer beats each reference row, p99 against p99 and
    p50 against p50 (None where a figure is missing)."""
    out: dict[str, float | None] = {}
    for name in ("eager_torch", "static_optimization"):
        row = reference.get(f"{name}_us")
        for p in ("p50", "p99"):
            if row is not None and end_to_end_us is not None and end_to_end_us[p] > 0:
                out[f"{name}_{p}"] = round(row[p] / end_to_end_us[p], 1)
            else:
                out[f"{name}_{p}"] = None
    return out


def verdict(run: dict[str, Any] | None, target_p99_us: float) -> dict[str, Any]:
    """Pass when edge-run's default mode answered every sample at the requested rate, none
    skipped, with end-to-end p99 within ``target_p99_us``; ``line`` says why."""
    if run is None or run.get("end_to_end_us") is None:
        return {"pass": False, "line": "verdict: FAIL: no end-to-end figures (nothing answered)"}
    p99 = run["end_to_end_us"]["p99"]
    lost = run.get("simulator", {}).get("lost", 0)
    failures = []
    if p99 > target_p99_us:
        failures.append(f"p99 {p99:g} µs > target {target_p99_us:g} µs")
    if run["skipped"]:
        failures.append(f"{run['skipped']} of {run['samples_in']} samples skipped")
    if run["samples_in"] != run["estimates_out"] + run["skipped"] or lost:
        failures.append(f"{lost} samples lost on the link")
    where = f"at {run['rate_hz']:g} Hz, {run['inference']} inference, backend {run['backend']}"
    if failures:
        return {"pass": False, "line": f"verdict: FAIL {where}: " + "; ".join(failures)}
    return {
        "pass": True,
        "line": (
            f"verdict: PASS {where}: end-to-end p99 {p99:g} µs <= {target_p99_us:g} µs, 0 skipped"
        ),
    }


def _row(label: str, s: dict[str, float] | None, width: int = 44) -> str:
    if s is None:
        return f"{label:{width}s} (no figures)"
    return f"{label:{width}s} " + " ".join(f"{s[k]:9.1f}" for k in SUMMARY_KEYS)


def _head(width: int = 44) -> str:
    return f"{'(µs)':{width}s} " + " ".join(
        f"{k.replace('p999', 'p99.9'):>9s}" for k in SUMMARY_KEYS
    )


def format_report(report: dict[str, Any]) -> str:
    """The whole result as text: machine, ratios first, stages, end to end, references,
    ramp, verdict."""
    lines = [
        f"machine: {machine_line(report['machine'])}",
        (
            f"load average (1 min): {report['load_average']['before']:.2f} before, "
            f"{report['load_average']['after']:.2f} after"
        ),
    ]
    ratio = report["speedup"]
    e2e = report["end_to_end_us"]
    if e2e is not None:
        parts = [
            f"{label} {ratio[f'{key}_p99']:g}x (p50 {ratio[f'{key}_p50']:g}x)"
            for key, label in (
                ("eager_torch", "eager PyTorch per sample"),
                ("static_optimization", "static optimisation per frame"),
            )
            if ratio[f"{key}_p99"] is not None
        ]
        if parts:
            lines.append(
                f"end to end (model-rate, p99 {e2e['p99']:g} µs) is faster than: "
                + "; ".join(parts)
                + "  [p99 vs p99, same run]"
            )
    lines += ["", "stages, each timed alone:", _head()]
    lines += [_row(stage_label(k), s) for k, s in report["stages"].items()]
    lines += [
        f"{'inference ' + name:44s} unavailable: {why}"
        for name, why in report["stages_unavailable"].items()
    ]
    lines += [
        "",
        (
            f"end to end through the serial path (sample received -> Estimate written), "
            f"{report['rate_hz']:g} Hz, {report['seconds']:g} s per mode:"
        ),
        _head(),
    ]
    for mode, run in report["end_to_end"].items():
        lines.append(_row(f"{mode} ({run['backend']})", run["end_to_end_us"]))
    for mode, run in report["end_to_end"].items():
        period, jitter = run["period_us"], run["jitter_us"]
        timing = (
            "estimate period: too few estimates"
            if period is None
            else f"estimate period p50 {period['p50']:g} µs, jitter std {jitter['std']:g} µs, "
            f"|dev| p99 {jitter['p99']:g} µs, max {jitter['max']:g} µs"
        )
        lines.append(
            f"  {mode}: samples {run['samples_in']}, estimates {run['estimates_out']}, "
            f"skipped {run['skipped']}, late (> one sample period) {run['late']}, "
            f"ACTIVATION_STALE {run['stale_activation']}; {timing}"
        )
    reference = report["reference"]
    lines += ["", "reference rows (same run):", _head()]
    lines.append(_row("eager PyTorch per sample (network only)", reference["eager_torch_us"]))
    lines.append(_row("static optimisation per frame", reference["static_optimization_us"]))
    lines += [f"  {note}" for note in reference["notes"]]
    ramp = report["ramp"]
    lines.append("")
    if ramp["steps"]:
        steps = ", ".join(
            f"{s['rate_hz']:g} Hz {'held' if s['sustained'] else 'NOT held'} "
            f"(skipped {s['skipped']}, p99 {s['p99_us']} µs)"
            for s in ramp["steps"]
        )
        best = report["max_sustainable_hz"]
        lines.append(
            f"ramp ({ramp['seconds']:g} s per rate; held = zero skipped and p99 <= "
            f"{ramp['budget_us']:g} µs): {steps}"
        )
        lines.append(
            "highest sustainable rate: "
            + (f"{best:g} Hz" if best else "none held")
            + (
                " (the highest rate tried: go further with --ramp)"
                if best is not None and best == max(ramp["rates_hz"])
                else ""
            )
        )
    else:
        lines.append(f"ramp: {ramp['note']}")
    lines.append(report["verdict"]["line"])
    return "\n".join(lines)


def plot_latency(report: dict[str, Any], path: Path) -> None:
    """One panel per inference mode: the end-to-end latency histogram (log counts) with
    p50, p99 and p99.9 marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [
        (mode, run)
        for mode, run in report["end_to_end"].items()
        if run["end_to_end_us"] is not None
    ]
    fig, axes = plt.subplots(len(runs) or 1, 1, figsize=(8, 3.2 * max(len(runs), 1)), squeeze=False)
    for ax, (mode, run) in zip(axes[:, 0], runs, strict=False):
        hist = run["latency_histogram"]
        us, count = np.asarray(hist["us"]), np.asarray(hist["count"])
        width = max(1, int(np.ceil((us.max() - us.min() + 1) / 200)))
        bins = np.arange(us.min(), us.max() + width + 1, width)
        ax.hist(us, bins=bins, weights=count, color="0.55", log=True)
        e2e = run["end_to_end_us"]
        for (key, label), colour in zip(
            MARKED_PERCENTILES, ("tab:green", "tab:orange", "tab:red"), strict=True
        ):
            ax.axvline(e2e[key], color=colour, linestyle="--", label=f"{label} {e2e[key]:g} µs")
        ax.set_title(
            f"{mode} inference ({run['backend']}), {run['rate_hz']:g} Hz, "
            f"{run['estimates_out']} estimates"
        )
        ax.set_xlabel("sample received -> Estimate written (µs)")
        ax.set_ylabel("estimates")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_formats() -> set[str] | None:
    """The file extensions matplotlib can write here; None without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return set(Figure().canvas.get_supported_filetypes())
