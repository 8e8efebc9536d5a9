"""edge-bench: the latency of every stage of edge-run on the machine it runs on.

Stages, each timed per call with ``time.perf_counter_ns`` over thousands of
frames of a gait-like input: decode (one JointSample frame), accept (sensor
mapping, checks, ring buffer), window (resampling and causal derivatives, the
Numba kernel; the numpy reference is shown beside it), inference (every backend
that loads here, batch 1, one thread; off the answer path in model-rate mode),
carry (the newest network output extrapolated to the sample), Hill forces and
torques, encode (the Estimate frame), and end to end through a pseudo-terminal
with the device simulator in its own process (sample received → estimate
written).

Benchmarks print figures; they are not tests. Other processes on the machine
show up in the tails (p99, p99.9): say what else ran when you quote them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

EXIT_BAD_INPUT = 2


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


def percentiles(samples_us: np.ndarray) -> dict[str, float]:
    p50, p99, p999 = np.percentile(samples_us, [50.0, 99.0, 99.9])
    return {
        "n": int(samples_us.size),
        "p50": round(float(p50), 2),
        "p99": round(float(p99), 2),
        "p999": round(float(p999), 2),
        "max": round(float(samples_us.max()), 2),
    }


def gait_samples(n: int, rate_hz: float) -> list[Any]:
    """``n`` JointSample messages of the built-in normative gait at ``rate_hz``."""
    from firmware_bridge.codec import JointSample
    from firmware_bridge.normative_gait import load_normative_gait

    t = np.arange(n) / rate_hz
    q = load_normative_gait().angles_at_time(t, None).astype(np.float32)
    stamps = np.round(t * 1e6).astype(np.int64) % (1 << 32)
    return [JointSample(i, int(stamps[i]), tuple(q[i].tolist()), 0b111) for i in range(n)]


def bench_stages(bundle: Any, backends: list[str], frames: int, rate_hz: float,
                 progress: Any = None) -> dict[str, dict[str, float]]:
    """Per-stage latency percentiles (µs) over ``frames`` calls each."""
    from calib.sensors import SensorMap
    from edge.backends import BackendError, select_backend
    from edge.derivatives import network_inputs, resample_uniform
    from edge.hill import HillModel
    from edge.inference import ActivationCarry, NetworkOutput
    from edge.runtime import EstimatePipeline
    from firmware_bridge.codec import Estimate, StreamDecoder, encode

    samples = gait_samples(frames + 2000, rate_hz)
    hill = HillModel(bundle.subject)
    hill.warmup()
    first = select_backend(bundle, backends[0], threads=1)
    pipeline = EstimatePipeline(bundle, first, hill, SensorMap.identity())
    results: dict[str, dict[str, float]] = {}

    frames_bytes = [encode(s) for s in samples]
    decoder = StreamDecoder()
    it = iter(frames_bytes)
    results["decode"] = percentiles(time_calls(lambda: decoder.feed(next(it)), frames))

    sample_it = iter(samples)
    results["accept (map, check, ring)"] = percentiles(
        time_calls(lambda: pipeline.accept(next(sample_it)), frames)
    )
    ring, window = pipeline.ring, pipeline.window
    results["window (resample + derivatives, Numba)"] = percentiles(
        time_calls(lambda: window.build(ring), frames)
    )
    spec = pipeline.spec

    def numpy_reference() -> None:
        t, q = ring.times(), ring.angles()
        network_inputs(resample_uniform(t, q, t[-1], spec.rate_hz, spec.grid_points), spec.rate_hz)

    results["window (numpy reference, not used)"] = percentiles(
        time_calls(numpy_reference, frames)
    )
    x = window.build(ring).copy()
    for name in backends:
        if progress:
            progress(f"inference: {name}")
        try:
            backend = first if name == backends[0] else select_backend(bundle, name, threads=1)
        except BackendError as exc:  # a backend absent here is reported, not fatal
            results[f"inference {name}"] = {"unavailable": str(exc)}
            continue
        results[f"inference {backend.name}"] = percentiles(
            time_calls(lambda b=backend: b.infer(x), frames)
        )
    a = np.clip(np.asarray(first.infer(x), dtype=np.float64), 0.0, 1.0)
    carry = ActivationCarry(a.size, 0.02)
    pair = (NetworkOutput(0, 0.01, a), NetworkOutput(0, 0.0, a * 0.9))
    carried = np.empty_like(a)
    results["carry (activations to the sample)"] = percentiles(
        time_calls(lambda: carry.at(pair, 0, 0.015, carried), frames)
    )
    q, qd = window.answered_angles.copy(), window.answered_velocities.copy()
    results["hill (forces, torques)"] = percentiles(
        time_calls(lambda: hill.evaluate(a, q, qd), frames)
    )
    forces, _, torques = (np.array(v) for v in hill.evaluate(a, q, qd))

    def encode_estimate() -> None:
        encode(Estimate(1, 2, 3, 4, tuple(a.tolist()), tuple(forces.tolist()),
                        tuple(torques.tolist()), 0, 0, 100, 5000))

    results["encode (Estimate frame)"] = percentiles(time_calls(encode_estimate, frames))
    return results


def bench_end_to_end(bundle: Any, backend_name: str, rate_hz: float, seconds: float,
                     log_path: Path | None = None, inference: Any = None,
                     wrap_backend: Callable[[Any], Any] | None = None,
                     switch_interval_s: float | None = None,
                     during_run: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """edge-run's loop against the simulator process over a pty for ``seconds``.

    ``inference``: edge.inference.InferenceSettings (default: the bundle's model-rate
    defaults); ``wrap_backend``: a function of the loaded backend returning the one to
    run (to inject faults); ``switch_interval_s``: the GIL switch interval in the loop
    (default: the runtime's); ``during_run``: called with the pipeline on a thread of
    its own once the run has started (to inject faults from outside)."""
    from calib.sensors import SensorMap
    from edge.backends import select_backend
    from edge.hill import HillModel
    from edge.runtime import EstimatePipeline, Runtime, RuntimeConfig
    from edge.sources import SimulatedSource
    from firmware_bridge.link import open_link

    backend = select_backend(bundle, backend_name, threads=1)
    backend.warmup(200)
    name = backend.name
    if wrap_backend is not None:
        backend = wrap_backend(backend)
    hill = HillModel(bundle.subject)
    hill.warmup()
    pipeline = EstimatePipeline(bundle, backend, hill, SensorMap.identity(), inference=inference)
    with SimulatedSource(rate_hz, seconds, open_link) as source:
        config = RuntimeConfig(duration_s=seconds + 60.0, log_path=log_path,
                               status_period_s=3600.0)
        if switch_interval_s is not None:
            config = dataclasses.replace(config, switch_interval_s=switch_interval_s)
        runtime = Runtime(config, source, pipeline, log=sys.stderr)
        if during_run is not None:
            threading.Thread(target=during_run, args=(pipeline,), daemon=True).start()
        summary = runtime.run()
    summary["backend"] = name
    summary["inference"] = pipeline.inference.mode
    summary["switch_interval_s"] = runtime.config.switch_interval_s
    summary["rate_hz"] = rate_hz
    summary["simulator"] = source.device_report
    return summary


def format_table(results: dict[str, dict[str, Any]]) -> str:
    lines = [f"{'stage':42s} {'p50':>9s} {'p99':>9s} {'p99.9':>9s} {'max':>9s}   (µs)"]
    for name, r in results.items():
        if "unavailable" in r:
            lines.append(f"{name:42s} unavailable: {r['unavailable']}")
        else:
            lines.append(
                f"{name:42s} {r['p50']:9.1f} {r['p99']:9.1f} {r['p999']:9.1f} {r['max']:9.1f}"
            )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edge-bench",
        description="Measure the latency of every stage of edge-run (decode, window, "
        "inference per backend, Hill, encode) and end to end through a pseudo-terminal "
        "with the device simulator. Prints percentiles in µs.",
    )
    p.add_argument("--bundle", type=Path, help="bundle directory (default: the shipped one)")
    p.add_argument("--backends", default="onnxruntime,torch",
                   help="comma-separated backends to time (default onnxruntime,torch)")
    p.add_argument("--frames", type=int, default=3000, help="calls per stage (default 3000)")
    p.add_argument("--rate", type=float, default=1000.0,
                   help="device sample rate for the input and the end-to-end run (default 1000)")
    p.add_argument("--e2e-seconds", type=float, default=10.0,
                   help="length of the end-to-end run through a pty; 0 skips it (default 10)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from edge.bundle import BundleError, default_bundle_path, load_bundle

    if args.frames < 100:
        print(f"edge-bench: --frames must be at least 100, got {args.frames}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not 1.0 <= args.rate <= 10_000.0:
        print(f"edge-bench: --rate must lie in 1..10000 Hz, got {args.rate}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        bundle = load_bundle(args.bundle or default_bundle_path())
    except BundleError as exc:
        print(f"edge-bench: bundle: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    backends = [b for b in args.backends.split(",") if b]
    log = (lambda msg: None) if args.json else (lambda msg: print(msg, file=sys.stderr))
    log(f"timing stages over {args.frames} frames each ...")
    stages = bench_stages(bundle, backends, args.frames, args.rate, progress=log)
    report: dict[str, Any] = {"stages_us": stages}
    if args.e2e_seconds > 0:
        log(f"end to end through a pty: {args.rate:g} Hz for {args.e2e_seconds:g} s ...")
        report["end_to_end"] = bench_end_to_end(bundle, backends[0], args.rate, args.e2e_seconds)
    if args.json:
        print(json.dumps(report))
        return 0
    print(format_table(stages))
    if "end_to_end" in report:
        e = report["end_to_end"]
        lat = e["latency_us"]
        print(
            f"end to end ({e['backend']}, {e['rate_hz']:g} Hz, {e['duration_s']:.1f} s): "
            f"samples {e['samples_in']}, estimates {e['estimates_out']}, skipped {e['skipped']}, "
            f"latency µs p50 {lat['p50']} p99 {lat['p99']} p99.9 {lat['p999']}; "
            f"decoder errors {e['decoder_errors'] or 'none'}; events {e['events'] or 'none'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
