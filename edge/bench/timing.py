"""Timing calls and summarising durations: the figures every edge-bench row is made of.

A summary is ``{n, min, p50, p90, p99, p999, max}`` in µs, from per-call samples
(``summarize``) or from the runtime's 1-µs latency histogram (``summarize_histogram``),
so stage rows, end-to-end rows and reference rows read alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

PERCENTS = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}
"""The percentiles every summary carries, by key."""


def time_calls(fn: Callable[[], Any], n: int, warmup: int = 50) -> np.ndarray:
    """Per-call wall time (µs) of ``fn`` over ``n`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    out = np.empty(n)
    clock = time.perf_counter_ns
    for i in range(n):
        start = clock()
        fn()
        out[i] = clock() - start
    return out / 1000.0


def summarize(samples_us: np.ndarray) -> dict[str, float]:
    """``{n, min, p50, p90, p99, p999, max}`` (µs, two decimals) of per-call samples."""
    samples_us = np.asarray(samples_us, dtype=np.float64)
    if samples_us.size == 0:
        raise ValueError("no durations to summarise")
    values = np.percentile(samples_us, list(PERCENTS.values()))
    out: dict[str, float] = {"n": int(samples_us.size), "min": round(float(samples_us.min()), 2)}
    out.update({k: round(float(v), 2) for k, v in zip(PERCENTS, values, strict=True)})
    out["max"] = round(float(samples_us.max()), 2)
    return out


def summarize_histogram(histogram: np.ndarray) -> dict[str, float] | None:
    """The same summary from a histogram whose bin k counts durations of k µs (the last bin
    holds everything at or above it); None when it is empty. Percentiles as edge-run's
    summary computes them (``edge.status.histogram_percentiles``), exact to 1 µs."""
    from edge.status import histogram_percentiles

    filled = np.flatnonzero(histogram)
    if filled.size == 0:
        return None
    out: dict[str, float] = {"n": int(histogram.sum()), "min": float(filled[0])}
    percentiles = histogram_percentiles(histogram, tuple(PERCENTS.values()))
    # a non-empty histogram has every percentile (None marks an empty one)
    out.update({k: v for k, v in percentiles.items() if v is not None})
    out["max"] = float(filled[-1])
    return out
