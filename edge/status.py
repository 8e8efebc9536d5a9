"""Counters, latency statistics, the live status and the run summary of edge-run.

The loop only increments counters and records one latency and one activation age
per estimate into preallocated arrays (a 1 µs histogram for the whole run, a ring
of the latest latencies for the live line); formatting happens in a reporter
thread a few times a second, never in the loop.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol, TextIO

import numpy as np

HISTOGRAM_LIMIT_US = 1_000_000
"""Latencies at or above this (1 s) land in the histogram's last bin."""

RECENT_LATENCIES = 16384


@dataclass
class RunCounters:
    """What the loop counts. ``samples_in == estimates_out + skipped`` at every estimate.

    ``device_silences``: times the device stopped sending while the link stayed open;
    ``link_lost`` / ``link_reopened``: times the link itself failed and came back;
    ``events``: runtime events by kind (README, "The run summary").
    """

    samples_in: int = 0
    estimates_out: int = 0
    skipped: int = 0
    log_overflow: int = 0
    link_lost: int = 0
    link_reopened: int = 0
    device_silences: int = 0
    events: Counter[str] = field(default_factory=Counter)
    flags: Counter[str] = field(default_factory=Counter)


class LatencyRecorder:
    """A per-estimate duration in µs (latency, activation age): whole-run histogram plus a
    ring of recent values.

    ``record`` appends to a short list (one list append in the loop); every
    ``BATCH`` values are moved into the histogram and the ring together, so the loop
    pays a few numpy calls once per batch instead of per estimate. Only the loop's
    thread records; readers see the values up to the newest batch plus a copy of the
    pending ones.
    """

    BATCH = 256

    def __init__(self) -> None:
        self.histogram = np.zeros(HISTOGRAM_LIMIT_US + 1, dtype=np.int64)
        self.recent = np.zeros(RECENT_LATENCIES, dtype=np.int64)
        self.flushed = 0
        self._batch: list[int] = []

    def record(self, latency_us: int) -> None:
        batch = self._batch
        batch.append(latency_us)
        if len(batch) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        """Move the pending values into the histogram and the ring (the recording thread)."""
        batch, self._batch = self._batch, []
        if not batch:
            return
        values = np.array(batch, dtype=np.int64)
        np.add.at(self.histogram, np.minimum(values, HISTOGRAM_LIMIT_US), 1)
        self.recent[(self.flushed + np.arange(values.size)) % RECENT_LATENCIES] = values
        self.flushed += values.size

    @property
    def recorded(self) -> int:
        """Values recorded so far."""
        return self.flushed + len(self._batch)

    def percentiles(self) -> dict[str, float | None]:
        """p50/p99/p999 (µs) over the whole run, from the histogram (exact to 1 µs); call it
        from the recording thread, or after the run."""
        self.flush()
        return histogram_percentiles(self.histogram, (50.0, 99.0, 99.9))

    def recent_since(self, start: int) -> np.ndarray:
        """Latencies recorded since the count ``start`` (at most the ring's size plus the
        pending ones), from any thread."""
        pending = list(self._batch)
        flushed = self.flushed
        wanted = max(0, flushed + len(pending) - start)
        from_pending = min(wanted, len(pending))
        from_ring = min(wanted - from_pending, RECENT_LATENCIES, flushed)
        idx = np.arange(flushed - from_ring, flushed) % RECENT_LATENCIES
        return np.concatenate(
            [self.recent[idx], np.array(pending[len(pending) - from_pending :], dtype=np.int64)]
        )


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


ENDINGS = {
    "duration": "the set duration passed",
    "stopped": "stopped (signal or stop request)",
    "stream ended": "the device ended its stream and every sample was answered",
}
"""Why a run ended (the summary's ``ended``)."""


def run_summary(
    counters: RunCounters,
    latency: LatencyRecorder,
    activation_age: LatencyRecorder,
    duration_s: float,
    decoder_errors: dict[str, int],
    ended: str,
) -> dict:
    """The summary edge-run prints last (also the final ``--json-status`` line)."""
    return {
        "type": "summary",
        "duration_s": round(duration_s, 3),
        "samples_in": counters.samples_in,
        "estimates_out": counters.estimates_out,
        "skipped": counters.skipped,
        "ended": ended,
        "device": {"silences": counters.device_silences},
        "link": {"lost": counters.link_lost, "reopened": counters.link_reopened},
        "decoder_errors": dict(sorted((k, v) for k, v in decoder_errors.items() if v)),
        "events": dict(sorted((k, v) for k, v in counters.events.items() if v)),
        "flags": dict(sorted(counters.flags.items())),
        "log_overflow": counters.log_overflow,
        "latency_us": latency.percentiles(),
        "activation_age_us": activation_age.percentiles(),
    }


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def format_summary(summary: dict) -> str:
    lat = summary["latency_us"]
    age = summary["activation_age_us"]
    silences = summary["device"]["silences"]
    link = summary["link"]
    device = (
        f"stopped sending {silences} time(s) while the link stayed open"
        if silences
        else "sent without stopping"
    )
    link_text = (
        f"lost {link['lost']} time(s), reopened {link['reopened']} time(s)"
        if link["lost"]
        else "no errors"
    )
    return "\n".join(
        (
            (
                f"summary: {summary['duration_s']:.1f} s, samples in {summary['samples_in']}, "
                f"estimates out {summary['estimates_out']}, skipped {summary['skipped']}; ended: "
                f"{ENDINGS.get(summary['ended'], summary['ended'])}"
            ),
            f"  device: {device}; link: {link_text}",
            (
                f"  frames the decoder dropped: {_counts(summary['decoder_errors'])}; events: "
                f"{_counts(summary['events'])}; log overflow {summary['log_overflow']}"
            ),
            f"  flagged: {_counts(summary['flags'])}",
            (
                f"  latency µs p50 {lat['p50']} p99 {lat['p99']} p99.9 {lat['p999']}; activation "
                f"age µs p50 {age['p50']} p99 {age['p99']} p99.9 {age['p999']}"
            ),
        )
    )


class EstimateSnapshot(Protocol):
    """The newest estimate's values, read by the status thread for display."""

    activations: np.ndarray
    forces: np.ndarray


def short_name(muscle: str) -> str:
    """A muscle's display label: its name without the side suffix."""
    return muscle[:-2] if muscle.endswith(("_r", "_l")) else muscle


class StatusReporter:
    """The live status from its own thread: counters, latency, and the estimates themselves.

    Text goes to ``stream`` (stderr by default): a status line, then the newest
    activations (%) and forces (N) per muscle on two lines, or with ``view`` "bars"
    one bar per muscle; on a terminal the block is redrawn in place. With
    ``json_lines`` each status is one JSON object on stdout (with the estimate).
    """

    def __init__(
        self,
        counters: RunCounters,
        latency: LatencyRecorder,
        json_lines: bool = False,
        period_s: float = 1.0,
        stream: TextIO | None = None,
        estimate: EstimateSnapshot | None = None,
        muscles: tuple[str, ...] = (),
        view: str = "line",
    ) -> None:
        self.counters = counters
        self.latency = latency
        self.json_lines = json_lines
        self.period_s = period_s
        self.stream = stream if stream is not None else (sys.stdout if json_lines else sys.stderr)
        self.estimate = estimate
        self.muscles = muscles
        self.view = view
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status", daemon=True)
        self._in_place = not json_lines and self.stream.isatty()
        self._lines_drawn = 0

    def start(self) -> StatusReporter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

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
                "events": dict(sorted((k, v) for k, v in c.events.items() if v)),
            }
            if self.estimate is not None and c.estimates_out:
                status["activations"] = dict(
                    zip(self.muscles, np.round(self.estimate.activations, 4).tolist())
                )
                status["forces_n"] = dict(
                    zip(self.muscles, np.round(self.estimate.forces, 2).tolist())
                )
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
        lines = [
            (
                f"in {status['input_hz']:7.1f} Hz  out {status['estimate_hz']:7.1f} Hz  "
                f"latency p50 {p50:>5} µs p99 {p99:>5} µs  skipped {status['skipped']}  "
                f"events {sum(status['events'].values())}"
            )
        ]
        if "activations" in status:
            lines += self._estimate_lines(status["activations"], status["forces_n"])
        if not self._in_place:
            return "\n".join(lines) + "\n"
        width = shutil.get_terminal_size((120, 24)).columns - 1
        up = f"\x1b[{self._lines_drawn}F" if self._lines_drawn else ""
        self._lines_drawn = len(lines)
        return up + "".join(f"{line[:width]}\x1b[K\n" for line in lines)

    def _estimate_lines(self, activations: dict[str, float], forces: dict[str, float]) -> list[str]:
        if self.view == "bars":
            width = max(len(short_name(m)) for m in activations)
            return [
                f"{short_name(m):<{width}} {_bar(a)} {a:5.2f} {forces[m]:7.0f} N"
                for m, a in activations.items()
            ]
        return [
            "activation %  "
            + "  ".join(f"{short_name(m)} {100 * a:3.0f}" for m, a in activations.items()),
            "force N       " + "  ".join(f"{short_name(m)} {f:4.0f}" for m, f in forces.items()),
        ]


_BAR_WIDTH = 24
_EIGHTHS = " ▏▎▍▌▋▊▉"


def _bar(fraction: float) -> str:
    """A bar of ``_BAR_WIDTH`` characters filled to ``fraction`` (0..1), in eighths."""
    eighths = round(min(max(fraction, 0.0), 1.0) * _BAR_WIDTH * 8)
    full, rest = divmod(eighths, 8)
    bar = "█" * full + (_EIGHTHS[rest] if rest else "")
    return bar.ljust(_BAR_WIDTH, "·")
