"""Counters, latency statistics, the live status line and the run summary of edge-run.

The loop only increments counters and records one latency per estimate into
preallocated arrays (a 1 µs histogram for the whole run, a ring of the latest
latencies for the live line); formatting happens in a reporter thread about once
a second, never in the loop.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np

HISTOGRAM_LIMIT_US = 1_000_000
"""Latencies at or above this (1 s) land in the histogram's last bin."""

RECENT_LATENCIES = 16384


@dataclass
class RunCounters:
    """What the loop counts. ``samples_in == estimates_out + skipped`` at every estimate."""

    samples_in: int = 0
    estimates_out: int = 0
    skipped: int = 0
    log_overflow: int = 0
    reconnects: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    flags: Counter[str] = field(default_factory=Counter)


class LatencyRecorder:
    """Per-estimate latency in µs: whole-run histogram plus a ring of recent values."""

    def __init__(self) -> None:
        self.histogram = np.zeros(HISTOGRAM_LIMIT_US + 1, dtype=np.int64)
        self.recent = np.zeros(RECENT_LATENCIES, dtype=np.int64)
        self.recorded = 0

    def record(self, latency_us: int) -> None:
        self.histogram[min(HISTOGRAM_LIMIT_US, latency_us)] += 1
        self.recent[self.recorded % RECENT_LATENCIES] = latency_us
        self.recorded += 1

    def percentiles(self) -> dict[str, float | None]:
        """p50/p99/p999 (µs) over the whole run, from the histogram (exact to 1 µs)."""
        return histogram_percentiles(self.histogram, (50.0, 99.0, 99.9))

    def recent_since(self, start: int) -> np.ndarray:
        """Latencies recorded since the counter value ``start`` (at most the ring's size)."""
        end = self.recorded
        n = min(end - start, RECENT_LATENCIES)
        idx = np.arange(end - n, end) % RECENT_LATENCIES
        return self.recent[idx]


def histogram_percentiles(
    histogram: np.ndarray, percents: tuple[float, ...]
) -> dict[str, float | None]:
    """Percentiles of a 1-unit-bin histogram: the smallest bin whose cumulative count reaches q."""
    total = int(histogram.sum())
    names = {50.0: "p50", 99.0: "p99", 99.9: "p999"}
    if total == 0:
        return {names.get(p, f"p{p:g}"): None for p in percents}
    cumulative = np.cumsum(histogram)
    out: dict[str, float | None] = {}
    for p in percents:
        rank = max(1, int(np.ceil(p / 100.0 * total)))
        out[names.get(p, f"p{p:g}")] = float(np.searchsorted(cumulative, rank))
    return out


def run_summary(counters: RunCounters, latency: LatencyRecorder, duration_s: float) -> dict:
    """The summary edge-run prints last (also the final ``--json-status`` line)."""
    return {
        "type": "summary",
        "duration_s": round(duration_s, 3),
        "samples_in": counters.samples_in,
        "estimates_out": counters.estimates_out,
        "skipped": counters.skipped,
        "errors": dict(sorted(counters.errors.items())),
        "flags": dict(sorted(counters.flags.items())),
        "log_overflow": counters.log_overflow,
        "reconnects": counters.reconnects,
        "latency_us": latency.percentiles(),
    }


def format_summary(summary: dict) -> str:
    lat = summary["latency_us"]
    errors = ", ".join(f"{k} {v}" for k, v in summary["errors"].items()) or "none"
    flags = ", ".join(f"{k} {v}" for k, v in summary["flags"].items()) or "none"
    return (
        f"summary: {summary['duration_s']:.1f} s, samples in {summary['samples_in']}, "
        f"estimates out {summary['estimates_out']}, skipped {summary['skipped']}, "
        f"errors: {errors}; flagged: {flags}; log overflow {summary['log_overflow']}, "
        f"reconnects {summary['reconnects']}; latency µs p50 {lat['p50']} p99 {lat['p99']} "
        f"p99.9 {lat['p999']}"
    )


class StatusReporter:
    """Prints a status line about once a second from its own thread.

    Text lines go to ``stream`` (stderr by default, overwritten in place on a TTY);
    with ``json_lines`` each status is one JSON object on stdout.
    """

    def __init__(
        self,
        counters: RunCounters,
        latency: LatencyRecorder,
        json_lines: bool = False,
        period_s: float = 1.0,
        stream: TextIO | None = None,
    ) -> None:
        self.counters = counters
        self.latency = latency
        self.json_lines = json_lines
        self.period_s = period_s
        self.stream = stream if stream is not None else (sys.stdout if json_lines else sys.stderr)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status", daemon=True)
        self._in_place = not json_lines and self.stream.isatty()

    def start(self) -> StatusReporter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self._in_place:
            self.stream.write("\n")
            self.stream.flush()

    def _run(self) -> None:
        last_t = time.monotonic()
        last_in = self.counters.samples_in
        last_out = self.counters.estimates_out
        last_recorded = self.latency.recorded
        while not self._stop.wait(self.period_s):
            now = time.monotonic()
            c = self.counters
            recent = self.latency.recent_since(last_recorded)
            dt = max(now - last_t, 1e-9)
            status = {
                "type": "status",
                "input_hz": round((c.samples_in - last_in) / dt, 1),
                "estimate_hz": round((c.estimates_out - last_out) / dt, 1),
                "latency_us": {
                    "p50": float(np.percentile(recent, 50)) if recent.size else None,
                    "p99": float(np.percentile(recent, 99)) if recent.size else None,
                },
                "samples_in": c.samples_in,
                "estimates_out": c.estimates_out,
                "skipped": c.skipped,
                "errors": dict(sorted(c.errors.items())),
            }
            last_t, last_in, last_out = now, c.samples_in, c.estimates_out
            last_recorded = self.latency.recorded
            self.stream.write(self._format(status))
            self.stream.flush()

    def _format(self, status: dict) -> str:
        if self.json_lines:
            return json.dumps(status) + "\n"
        lat = status["latency_us"]
        p50 = "-" if lat["p50"] is None else f"{lat['p50']:.0f}"
        p99 = "-" if lat["p99"] is None else f"{lat['p99']:.0f}"
        errors = sum(status["errors"].values())
        line = (
            f"in {status['input_hz']:7.1f} Hz  out {status['estimate_hz']:7.1f} Hz  "
            f"latency p50 {p50:>5} µs p99 {p99:>5} µs  skipped {status['skipped']}  "
            f"errors {errors}"
        )
        return ("\r" + line) if self._in_place else line + "\n"
