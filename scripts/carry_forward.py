"""Which carry-forward method should model-rate inference use? Measured, not guessed.

    python scripts/carry_forward.py [--seconds 20] [--rates 1000,2000] [--bundle DIR]
        [--delays-ms 0,1,2] [--inference-rates 100,200]

In model-rate mode the network runs ``--inference-rates`` times a second (default
the bundle's model rate; edge-run's default is twice that), on the window ending
at the sample that completes its period, and the samples in between are answered
with its newest output carried to their instant. This script plays the built-in
gait as a device would (clean, and as a 14-bit encoder with 0.1° of noise), runs
the network on *every* sample's window (the per-sample reference), and scores
each carry method against that reference per muscle (R² and the largest
absolute difference in activation):

- hold: the newest output as it is;
- linear: extrapolated along the line through the newest two outputs (at most two
  model periods ahead), clipped to [0, 1]: edge.inference.ActivationCarry, what the
  runtime does;
- first-order: first-order activation dynamics (Thelen 2003: time constants 10 ms
  activating, 40 ms deactivating, scaled by 0.5 + 1.5 a) driven towards the newest
  output as the excitation.

An output can only be used once the network has computed it: ``--delays-ms`` are
the times from a window's last sample to its output's use (0: inline; otherwise
about one inference on the runtime's own thread). Prints one table row per stream,
device rate, delay and method.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

TAU_ACTIVATION_S = 0.010
TAU_DEACTIVATION_S = 0.040


def reference_stream(bundle, rate_hz: float, seconds: float, noisy: bool):
    """Device samples of the built-in gait and the per-sample network activations of the
    reported muscles (N, R), as the Estimates carry them; rows before the first full
    window are dropped."""
    from calib.sensors import SensorMap
    from edge.backends import select_backend
    from edge.hill import HillModel
    from edge.inference import InferenceSettings
    from edge.runtime import MODEL_NOT_READY, EstimatePipeline
    from firmware_bridge.codec import JointSample
    from firmware_bridge.simulator import SimulatorConfig, source_angles

    config = SimulatorConfig(
        rate_hz=rate_hz,
        duration_s=seconds,
        counts_per_rev=16384 if noisy else 0,
        noise_rad=math.radians(0.1) if noisy else 0.0,
        seed=3,
    )
    q = source_angles(config).astype(np.float32)
    if noisy:  # Gaussian angle noise, then a 14-bit encoder
        rng = np.random.default_rng(config.seed)
        q = q + rng.normal(0.0, config.noise_rad, q.shape)
        step = 2 * np.pi / config.counts_per_rev
        q = (np.round(q / step) * step).astype(np.float32)
    t_us = np.round(np.arange(len(q)) / rate_hz * 1e6).astype(np.int64)
    backend = select_backend(bundle, "onnxruntime", threads=1)
    pipeline = EstimatePipeline(
        bundle,
        backend,
        HillModel(bundle.subject),
        SensorMap.identity(),
        inference=InferenceSettings("per-sample"),
    )
    times, activations = [], []
    for i in range(len(q)):
        sample = JointSample(i, int(t_us[i]), tuple(q[i].tolist()), 0b111)
        if not pipeline.estimate(pipeline.accept(sample)) & MODEL_NOT_READY:
            times.append(pipeline.ring.newest_time)
            activations.append(pipeline.activations.copy())
    return np.array(times), np.array(activations)


def network_runs(times: np.ndarray, network_rate_hz: float) -> np.ndarray:
    """Indices of the samples whose window the network sees (the runtime's rule)."""
    runs, next_run = [], -math.inf
    for i, t in enumerate(times):
        if t >= next_run:
            runs.append(i)
            next_run = t + 1.0 / network_rate_hz - 1e-6
    return np.array(runs)


def carried(method: str, times, reference, runs, delay_s: float, max_extrapolation_s: float):
    """Each sample's activations under ``method``, from the outputs usable at its instant;
    the linear carry extrapolates at most ``max_extrapolation_s`` (the runtime's setting)."""
    from edge.inference import ActivationCarry, NetworkOutput

    out = np.empty_like(reference)
    carry = ActivationCarry(reference.shape[1], max_extrapolation_s)
    state = reference[runs[0]].copy()
    pair, k = None, -1
    for i, t in enumerate(times):
        while k + 1 < len(runs) and times[runs[k + 1]] + delay_s <= t + 1e-12:
            k += 1
            j = runs[k]
            pair = (NetworkOutput(0, times[j], reference[j]), None if pair is None else pair[0])
        if pair is None:  # nothing computed yet: the first output, as the runtime waits for it
            out[i] = reference[runs[0]]
            continue
        if method == "hold":
            out[i] = pair[0].activations
        elif method == "linear":
            carry.at(pair, 0, t, out[i])
        else:
            dt = t - times[i - 1] if i else 0.0
            u = pair[0].activations
            tau = np.where(
                u > state,
                TAU_ACTIVATION_S * (0.5 + 1.5 * state),
                TAU_DEACTIVATION_S / (0.5 + 1.5 * state),
            )
            state += (u - state) * (1.0 - np.exp(-dt / tau))
            out[i] = state
    return out


def scores(estimate: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, float]:
    """R² per muscle and the largest absolute difference over all muscles."""
    r2 = 1 - ((estimate - reference) ** 2).mean(axis=0) / reference.var(axis=0)
    return r2, float(np.abs(estimate - reference).max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="gait played, s (20)")
    parser.add_argument("--rates", default="1000,2000", help="device rates, Hz (1000,2000)")
    parser.add_argument("--delays-ms", default="0,1,2", help="window end to output use, ms (0,1,2)")
    parser.add_argument("--bundle", type=Path, help="bundle (default: the shipped one)")
    parser.add_argument(
        "--inference-rates",
        default="",
        help="how often the network runs, Hz, comma-separated (default: the bundle's model rate)",
    )
    args = parser.parse_args(argv)
    from edge.bundle import BundleError, default_bundle_path, load_bundle
    from edge.inference import InferenceSettings

    try:
        bundle = load_bundle(args.bundle or default_bundle_path())
    except BundleError as exc:
        print(f"carry_forward: bundle: {exc}", file=sys.stderr)
        return 2
    model_rate = bundle.manifest.sample_rate_hz
    muscles = [m.removesuffix("_r").removesuffix("_l") for m in bundle.manifest.report_muscles]
    print(f"bundle {bundle.directory}, model rate {model_rate:g} Hz, {args.seconds:g} s of gait")
    print(
        f"{'stream':6s} {'rate':>5s} {'runs':>6s} {'delay':>6s} {'method':12s} {'min R²':>7s} "
        f"{'max |Δa|':>8s}  R² per muscle ({' '.join(muscles)})"
    )
    inference_rates = [float(r) for r in args.inference_rates.split(",") if r] or [model_rate]
    max_extrapolation_s = InferenceSettings.for_model_rate(model_rate).max_extrapolation_s
    for noisy in (False, True):
        for rate in (float(r) for r in args.rates.split(",")):
            times, reference = reference_stream(bundle, rate, args.seconds, noisy)
            for inference_rate in inference_rates:
                runs = network_runs(times, inference_rate)
                for delay_ms in (float(d) for d in args.delays_ms.split(",")):
                    for method in ("hold", "linear", "first-order"):
                        estimate = carried(
                            method, times, reference, runs, delay_ms / 1e3, max_extrapolation_s
                        )
                        r2, worst = scores(estimate, reference)
                        print(
                            f"{'noisy' if noisy else 'clean':6s} {rate:5.0f} "
                            f"{inference_rate:4.0f}Hz {delay_ms:4.1f}ms "
                            f"{method:12s} {r2.min():7.4f} {worst:8.4f}  "
                            + " ".join(f"{v:.4f}" for v in r2),
                            flush=True,
                        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
