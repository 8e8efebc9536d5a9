"""The latency of each stage of edge-run's answer path, timed alone per call.

Stages, each over ``frames`` calls of a gait-like input (the built-in normative
gait at the requested rate): decode (one JointSample frame), accept (sensor
mapping, checks, ring buffer), window (resampling and causal derivatives, the
Numba kernel; the numpy reference beside it), inference (every backend asked
for that loads here, batch 1, one thread; off the answer path in model-rate
mode), carry (the newest network output extrapolated to the sample), Hill
forces and torques, encode (the Estimate frame, as the runtime packs it) and
write (the frame written to a pseudo-terminal that a thread drains).
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from edge.bench.timing import summarize, time_calls

STAGE_LABELS = {
    "decode": "decode (JointSample frame)",
    "accept": "accept (map, check, ring)",
    "window": "window (resample + derivatives, Numba)",
    "window_numpy": "window (numpy reference, not used)",
    "inference": "inference",
    "carry": "carry (activations to the sample)",
    "hill": "Hill (forces, torques)",
    "encode": "encode (Estimate frame)",
    "write": "write (frame to a pty)",
}
"""What each stage key of ``bench_stages`` times; inference keys are ``inference.<backend>``."""


def stage_label(key: str) -> str:
    stage, _, backend = key.partition(".")
    return f"{STAGE_LABELS[stage]} {backend}".strip()


def gait_samples(n: int, rate_hz: float) -> list[Any]:
    """``n`` JointSample messages of the built-in normative gait at ``rate_hz``."""
    from firmware_bridge.codec import JointSample
    from firmware_bridge.normative_gait import load_normative_gait
    from firmware_bridge.timestamps import WRAP_US

    t = np.arange(n) / rate_hz
    q = load_normative_gait().angles_at_time(t, None).astype(np.float32)
    stamps = np.round(t * 1e6).astype(np.int64) % WRAP_US
    return [JointSample(i, int(stamps[i]), tuple(q[i].tolist()), 0b111) for i in range(n)]


def bench_stages(
    bundle: Any,
    backends: dict[str, Any],
    frames: int,
    rate_hz: float,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, dict[str, float]], np.ndarray]:
    """Per-stage summaries (µs, edge.bench.timing) over ``frames`` calls each, and the
    network input window the inference stages ran on.

    ``backends``: loaded backends by name (the first also serves the pipeline)."""
    from calib.sensors import SensorMap
    from edge.derivatives import network_inputs, resample_uniform
    from edge.hill import HillModel
    from edge.inference import ActivationCarry, InferenceSettings, NetworkOutput
    from edge.runtime import EstimatePipeline
    from firmware_bridge.codec import StreamDecoder, encode
    from firmware_bridge.estimate_frames import EstimatePacker

    samples = gait_samples(frames + 2000, rate_hz)
    hill = HillModel(bundle.subject)
    hill.warmup()
    first = next(iter(backends.values()))
    inline = InferenceSettings.for_model_rate(bundle.manifest.sample_rate_hz, threaded=False)
    pipeline = EstimatePipeline(bundle, first, hill, SensorMap.identity(), inference=inline)
    results: dict[str, dict[str, float]] = {}

    frames_bytes = [encode(s) for s in samples]
    decoder = StreamDecoder()
    it = iter(frames_bytes)
    results["decode"] = summarize(time_calls(lambda: decoder.feed(next(it)), frames))

    sample_it = iter(samples)
    results["accept"] = summarize(time_calls(lambda: pipeline.accept(next(sample_it)), frames))
    ring, window = pipeline.ring, pipeline.window
    results["window"] = summarize(time_calls(lambda: window.build(ring), frames))
    spec = pipeline.spec

    def numpy_reference() -> None:
        t, q = ring.times(), ring.angles()
        network_inputs(resample_uniform(t, q, t[-1], spec.rate_hz, spec.grid_points), spec.rate_hz)

    results["window_numpy"] = summarize(time_calls(numpy_reference, frames))
    x = window.build(ring).copy()
    for name, backend in backends.items():
        if progress:
            progress(f"inference: {name}")
        results[f"inference.{name}"] = summarize(
            time_calls(functools.partial(backend.infer, x), frames)
        )
    a = np.clip(np.asarray(first.infer(x), dtype=np.float64), 0.0, 1.0)
    carry = ActivationCarry(a.size, 0.02)
    pair = (NetworkOutput(0, 0.01, a), NetworkOutput(0, 0.0, a * 0.9))
    carried = np.empty_like(a)
    results["carry"] = summarize(time_calls(lambda: carry.at(pair, 0, 0.015, carried), frames))
    pose = pipeline.pose_index  # the unmeasured coordinates at 0
    q, qd = np.zeros(hill.n_coordinates), np.zeros(hill.n_coordinates)
    q[pose], qd[pose] = window.answered_angles, window.answered_velocities
    results["hill"] = summarize(time_calls(lambda: hill.evaluate(a, q, qd), frames))
    forces, _, torques = (np.array(v) for v in hill.evaluate(a, q, qd))
    pipeline.close()
    reported, balanced = pipeline.report_index, pipeline.torque_index
    sent = a[reported], forces[reported], torques[balanced]
    packer = EstimatePacker(reported.size, balanced.size)

    def pack() -> np.ndarray:
        return packer.pack(1, 2, 3, 4, 0, 0, 100, *sent, 5000)

    results["encode"] = summarize(time_calls(pack, frames))
    results["write"] = summarize(time_write(pack(), frames))
    return results, x


def time_write(frame: np.ndarray, frames: int) -> np.ndarray:
    """Per-call time (µs) of edge-run's frame writer putting ``frame`` on a pseudo-terminal
    whose other side a thread drains, as a device would."""
    from edge.sinks import FrameWriter
    from firmware_bridge.link import PseudoTerminal, open_link

    with PseudoTerminal() as pty:
        link = open_link(pty.device_path, timeout=0.01)
        writer = FrameWriter(link, link.fileno(), 0.1, Counter())
        done = threading.Event()

        def drain() -> None:
            while not done.is_set():
                pty.read(65536)

        reader = threading.Thread(target=drain, name="bench-drain", daemon=True)
        reader.start()
        try:
            return time_calls(lambda: writer.send_frame(frame), frames)
        finally:
            done.set()
            reader.join()
            link.close()
