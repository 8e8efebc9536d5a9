"""edge-run's loop measured end to end, and the highest rate it sustains.

``bench_end_to_end`` runs the real loop (edge.runtime) for a while against the
device simulator in its own process over a pseudo-terminal, or against a real
device on a serial port, and returns edge-run's run summary with the figures a
benchmark adds: the latency (sample received -> Estimate written) summarised
from the runtime's own 1-µs histogram, the estimate period (intervals between
successive Estimate frames written) and its jitter, late answers (written more
than one sample period after their sample arrived), answers flagged
ACTIVATION_STALE, and the histogram itself (sparse) for plots.

``find_max_sustainable`` is the ramp: short runs at rising rates, stopping at
the first that is not sustained (``sustained``: every sample answered, none
skipped or lost, latency p99 within the budget).
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.bench.timing import summarize, summarize_histogram

if TYPE_CHECKING:
    from firmware_bridge.codec import Message


class _TimedWriter:
    """A FrameWriter that notes when each estimate frame has been written (perf_counter ns)."""

    def __init__(self, writer: Any, stamps: list[int]) -> None:
        self._writer = writer
        self._stamps = stamps

    def send(self, message: Message) -> bool:
        return self._writer.send(message)

    def send_frame(self, frame: bytes | np.ndarray) -> bool:
        sent = self._writer.send_frame(frame)
        self._stamps.append(time.perf_counter_ns())
        return sent


class _WriteClock:
    """The source as the runtime sees it, except that its output notes each estimate's
    write time in ``stamps``; everything else is the source's own."""

    def __init__(self, source: Any) -> None:
        self._source = source
        self.stamps: list[int] = []
        self._writer: Any = None
        self._timed: _TimedWriter | None = None

    @property
    def output(self) -> _TimedWriter | None:
        writer = self._source.output
        if writer is None:
            return None
        if writer is not self._writer:
            self._writer, self._timed = writer, _TimedWriter(writer, self.stamps)
        return self._timed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)


def period_figures(stamps_ns: list[int], rate_hz: float) -> dict[str, Any]:
    """The estimate period (µs summary of the intervals between writes) and its jitter: the
    standard deviation of the intervals and the p99 / max of |interval - 1 / rate_hz|."""
    if len(stamps_ns) < 3:
        return {"period_us": None, "jitter_us": None}
    intervals = np.diff(np.asarray(stamps_ns, dtype=np.int64)).astype(np.float64) / 1000.0
    deviation = np.abs(intervals - 1e6 / rate_hz)
    return {
        "period_us": summarize(intervals),
        "jitter_us": {
            "std": round(float(intervals.std()), 2),
            "p99": round(float(np.percentile(deviation, 99.0)), 2),
            "max": round(float(deviation.max()), 2),
        },
    }


def sparse_histogram(histogram: np.ndarray) -> dict[str, list[int]]:
    """A 1-µs histogram as its filled bins: ``{"us": [...], "count": [...]}``."""
    filled = np.flatnonzero(histogram)
    return {"us": filled.tolist(), "count": histogram[filled].tolist()}


def bench_end_to_end(
    bundle: Any,
    backend_name: str,
    rate_hz: float,
    seconds: float,
    log_path: Path | None = None,
    inference: Any = None,
    wrap_backend: Callable[[Any], Any] | None = None,
    switch_interval_s: float | None = None,
    during_run: Callable[[Any], None] | None = None,
    port: str | None = None,
    baud: int | None = None,
) -> dict[str, Any]:
    """edge-run's loop for ``seconds``: against the simulator process over a pty at
    ``rate_hz``, or with ``port`` against the device there (``rate_hz`` is then the rate it
    sends at, used for the period and late counts).

    ``inference``: edge.inference.InferenceSettings (default: the bundle's model-rate
    defaults); ``wrap_backend``: a function of the loaded backend returning the one to
    run (to inject faults); ``switch_interval_s``: the GIL switch interval in the loop
    (default: the runtime's); ``during_run``: called with the pipeline on a thread of
    its own once the run has started (to inject faults from outside)."""
    from calib.sensors import SensorMap
    from edge.backends import select_backend
    from edge.hill import HillModel
    from edge.runtime import EstimatePipeline, Runtime, RuntimeConfig
    from edge.sources import SerialSource, SimulatedSource
    from firmware_bridge.link import DEFAULT_BAUD, open_link

    backend = select_backend(bundle, backend_name, threads=1)
    backend.warmup(200)
    name = backend.name
    if wrap_backend is not None:
        backend = wrap_backend(backend)
    hill = HillModel(bundle.subject)
    hill.warmup()
    pipeline = EstimatePipeline(bundle, backend, hill, SensorMap.identity(), inference=inference)
    if port is None:
        source: Any = SimulatedSource(rate_hz, seconds, open_link)
        duration_s = seconds + 60.0  # the simulator ends the run when it has played
    else:
        source = SerialSource(port, open_link, baud or DEFAULT_BAUD)
        duration_s = seconds
    with source:
        config = RuntimeConfig(duration_s=duration_s, log_path=log_path, status_period_s=3600.0)
        if switch_interval_s is not None:
            config = dataclasses.replace(config, switch_interval_s=switch_interval_s)
        clocked = _WriteClock(source)
        runtime = Runtime(config, clocked, pipeline, log=sys.stderr)
        if during_run is not None:
            threading.Thread(target=during_run, args=(pipeline,), daemon=True).start()
        summary = runtime.run()
    histogram = runtime.latency.histogram
    period_us = 1e6 / rate_hz
    summary["backend"] = name
    summary["inference"] = pipeline.inference.mode
    summary["switch_interval_s"] = runtime.config.switch_interval_s
    summary["rate_hz"] = rate_hz
    summary["simulator"] = getattr(source, "device_report", None) or {}
    summary["end_to_end_us"] = summarize_histogram(histogram)
    summary.update(period_figures(clocked.stamps, rate_hz))
    summary["late"] = int(histogram[int(np.floor(period_us)) + 1 :].sum())
    summary["stale_activation"] = int(summary["flags"].get("ACTIVATION_STALE", 0))
    summary["latency_histogram"] = sparse_histogram(histogram)
    return summary


def sustained(result: dict[str, Any], budget_us: float) -> bool:
    """Whether a run held its rate: every sample answered, none skipped, none the device
    lost, and the end-to-end p99 within ``budget_us``."""
    e2e = result.get("end_to_end_us")
    return (
        result["skipped"] == 0
        and result["samples_in"] > 0
        and result["samples_in"] == result["estimates_out"]
        and result.get("simulator", {}).get("lost", 0) == 0
        and e2e is not None
        and e2e["p99"] <= budget_us
    )


def find_max_sustainable(
    measure: Callable[[float], dict[str, Any]], rates_hz: list[float], budget_us: float
) -> tuple[float | None, list[dict[str, Any]]]:
    """The ramp: ``measure(rate)`` at each rate in rising order until one is not
    ``sustained``; returns the highest sustained rate (None if the first is not) and one
    step per rate measured (``rate_hz``, ``sustained``, ``skipped``, ``p99_us``)."""
    best: float | None = None
    steps: list[dict[str, Any]] = []
    for rate in sorted(rates_hz):
        result = measure(rate)
        ok = sustained(result, budget_us)
        e2e = result.get("end_to_end_us")
        steps.append(
            {
                "rate_hz": rate,
                "sustained": ok,
                "skipped": result["skipped"],
                "p99_us": None if e2e is None else e2e["p99"],
            }
        )
        if not ok:
            break
        best = rate
    return best, steps
