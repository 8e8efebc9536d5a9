"""The network off the answer path: carried activations, their age, and a stalled network.

The pipeline is driven sample by sample (no pty), so device time, not the machine's
speed, decides every age: the checks are exact.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
from helpers.runtime_device import runtime_bundle

from calib.sensors import SensorMap
from edge.backends import select_backend
from edge.bench.stages import gait_samples
from edge.hill import HillModel
from edge.inference import ActivationCarry, InferenceSettings, InferenceWorker, NetworkOutput
from edge.runtime import ACTIVATION_STALE, MODEL_NOT_READY, EstimatePipeline


@pytest.fixture(scope="module")
def bundle():
    return runtime_bundle()


def _pipeline(bundle, inference, backend=None):
    backend = backend or select_backend(bundle, "onnxruntime", threads=1)
    hill = HillModel(bundle.subject)
    hill.warmup()
    return EstimatePipeline(bundle, backend, hill, SensorMap.identity(), inference=inference)


def test_carry_holds_one_output_and_extrapolates_two_linearly():
    carry = ActivationCarry(3, max_extrapolation_s=0.02)
    out = np.empty(3)
    first = NetworkOutput(1, 0.10, np.array([0.2, 0.5, 0.9]))
    assert carry.at((first, None), 1, 0.104, out) == pytest.approx(0.004)
    np.testing.assert_array_equal(out, first.activations)
    second = NetworkOutput(1, 0.11, np.array([0.3, 0.45, 0.95]))
    pair = (second, first)
    assert carry.at(pair, 1, 0.115, out) == pytest.approx(0.005)
    np.testing.assert_allclose(out, [0.35, 0.425, 0.975])  # slope × 5 ms past the newest
    carry.at(pair, 1, 0.2, out)  # 90 ms past: extrapolated 20 ms, held beyond, clipped
    np.testing.assert_allclose(out, [0.5, 0.35, 1.0])
    assert carry.at(pair, 2, 0.115, out) is None  # outputs of an older history
    older = NetworkOutput(0, 0.10, first.activations)
    carry.at((second, older), 1, 0.115, out)  # the previous output is of another history
    np.testing.assert_array_equal(out, second.activations)


def test_a_busy_worker_takes_the_newest_window_and_counts_the_replaced():
    release = threading.Event()

    class Gate:
        name = "gate"

        def infer(self, x, out=None):
            release.wait(10)
            out[:] = x[0, 0, :2]
            return out

    worker = InferenceWorker(Gate(), None, (1, 1, 2), 2, threaded=True)
    try:
        for k in range(4):
            worker.submit(np.full((1, 1, 2), 0.1 * (k + 1), np.float32), k * 0.01, 0)
            time.sleep(0.05)
        release.set()
        deadline = time.monotonic() + 10
        while worker.published < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        worker.close()
    # the first window ran; of the three queued behind it only the newest did
    assert worker.published == 2 and worker.replaced == 2
    newest, previous = worker.latest
    assert newest.window_end_s == 0.03 and previous.window_end_s == 0.0
    np.testing.assert_allclose(newest.activations, [0.4, 0.4], rtol=1e-6)


@pytest.mark.slow
def test_model_rate_answers_are_the_network_at_its_runs_and_the_line_between(bundle):
    """Inline model-rate at a 1 kHz device: the network runs on the window of every sample
    that completes an inference period (half a model period by default), and its output
    equals per-sample inference there; the samples between carry the line through the
    last two outputs."""
    rate = bundle.manifest.sample_rate_hz
    settings = InferenceSettings.for_model_rate(rate, threaded=False)
    pipeline = _pipeline(bundle, settings)
    reference = _pipeline(bundle, InferenceSettings(mode="per-sample"))
    outputs, checked = [], 0
    for sample in gait_samples(1500, 1000.0):
        status = pipeline.estimate(pipeline.accept(sample))
        truth = reference.estimate(reference.accept(sample))
        if status & MODEL_NOT_READY:
            continue
        assert status == truth  # same flags; activations older than 30 ms: none here
        t = pipeline.ring.newest_time
        if pipeline.activation_age_us == 0:  # the network ran on this sample's window
            np.testing.assert_allclose(pipeline.activations, reference.activations, atol=1e-7)
            outputs.append((t, reference.activations.copy()))
        elif len(outputs) == 1:  # one output so far: held
            np.testing.assert_array_equal(pipeline.activations, outputs[0][1])
        else:
            (t0, a0), (t1, a1) = outputs[-2], outputs[-1]
            assert pipeline.activation_age_us == round((t - t1) * 1e6)
            line = np.clip(a1 + (a1 - a0) / (t1 - t0) * (t - t1), 0.0, 1.0)
            np.testing.assert_allclose(pipeline.activations, line, atol=1e-9)
            checked += 1
    assert len(outputs) > 100 and checked > 1000
    gaps = np.diff([t for t, _ in outputs])
    period = 1.0 / (rate * settings.runs_per_model_period)
    assert settings.runs_per_model_period == 2.0
    np.testing.assert_allclose(gaps, period, atol=1.5e-3)  # twice per model period


@pytest.mark.slow
def test_carried_activations_follow_per_sample_inference(bundle):
    """The accuracy target of model-rate inference: activation R² >= 0.99 per muscle against
    per-sample inference on the same 1 kHz stream (scripts/carry_forward.py compares the
    carry methods on longer runs and at other device rates)."""
    settings = InferenceSettings.for_model_rate(bundle.manifest.sample_rate_hz, threaded=False)
    pipeline = _pipeline(bundle, settings)
    reference = _pipeline(bundle, InferenceSettings(mode="per-sample"))
    got, want = [], []
    for sample in gait_samples(3000, 1000.0):
        status = pipeline.estimate(pipeline.accept(sample))
        reference.estimate(reference.accept(sample))
        if not status & MODEL_NOT_READY:
            got.append(pipeline.activations.copy())
            want.append(reference.activations.copy())
    got, want = np.array(got), np.array(want)
    r2 = 1 - ((got - want) ** 2).mean(axis=0) / want.var(axis=0)
    assert r2.min() >= 0.99, dict(zip(bundle.manifest.report_muscles, r2.round(4)))


def test_a_stalled_network_never_holds_up_an_answer_and_its_age_is_flagged(bundle):
    """The network thread blocks while 150 samples arrive (150 ms at 1 kHz): every sample
    is still answered at once, with the last output carried and its true age, and
    ACTIVATION_STALE exactly on the answers whose activations are older than the limit.
    Outside the stall the loop waits for each network output, as the device's pace would."""
    fast = select_backend(bundle, "onnxruntime", threads=1)
    stalling = threading.Event()
    resume = threading.Event()
    stalled = threading.Event()

    class Stalling:
        name = "stalling"

        def infer(self, x, out=None):
            if stalling.is_set():
                stalled.set()
                resume.wait(30)
            return fast.infer(x, out)

    settings = InferenceSettings.for_model_rate(bundle.manifest.sample_rate_hz)
    pipeline = _pipeline(bundle, settings, Stalling())
    limit_us = round(settings.max_activation_age_s * 1e6)
    samples = gait_samples(1200, 1000.0)
    rows = []
    try:
        for i, sample in enumerate(samples):
            if i == 500:
                stalling.set()
            if i == 650:
                stalling.clear()
                resume.set()
            published = pipeline.worker.published
            next_run = pipeline._next_inference_s
            status = pipeline.estimate(pipeline.accept(sample))
            if pipeline._next_inference_s != next_run:  # the network was handed a window
                if stalling.is_set():
                    _wait_for(stalled.is_set)  # the network thread is inside the stall
                else:
                    _wait_for(lambda p=published: pipeline.worker.published > p)
            rows.append((i, status, pipeline.activation_age_us, pipeline.activations.copy()))
    finally:
        resume.set()
        pipeline.close()
    assert stalled.is_set()
    answered = [r for r in rows if not r[1] & MODEL_NOT_READY]
    assert len(rows) == len(samples) and len(answered) > 900  # after a window of warm-up
    for i, status, age, activations in answered:
        assert bool(status & ACTIVATION_STALE) == (age > limit_us), (i, status, age)
        assert np.isfinite(activations).all()
    stale = [i for i, status, _, _ in answered if status & ACTIVATION_STALE]
    # the newest output before the stall is that of the last run before sample 500
    assert 490 + limit_us / 1000 <= stale[0] <= 500 + limit_us / 1000 + 1
    # the stall lasts to sample 650, where the network catches up on the newest window
    assert stale[-1] >= 649 - 1000 / bundle.manifest.sample_rate_hz and len(stale) >= 100
    assert not any(status & ACTIVATION_STALE for i, status, _, _ in answered if i > 700)


def _wait_for(condition, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the network thread did not answer"
        time.sleep(0.0005)


def test_a_network_in_its_own_process_answers_like_the_thread_and_survives_a_stop(bundle):
    """The network in a spawned process: the same outputs as the inline network on the
    windows it was handed, and when the process is stopped (SIGSTOP) for 150 samples the
    answers go on, flagged ACTIVATION_STALE exactly when older than the limit."""
    settings = InferenceSettings.for_model_rate(bundle.manifest.sample_rate_hz, worker="process")
    pipeline = _pipeline(bundle, settings)
    reference = select_backend(bundle, "onnxruntime", threads=1)
    limit_us = round(settings.max_activation_age_s * 1e6)
    windows, rows = {}, []
    try:
        assert pipeline.worker.pid != os.getpid()
        for i, sample in enumerate(gait_samples(1000, 1000.0)):
            if i == 500:
                os.kill(pipeline.worker.pid, signal.SIGSTOP)
            if i == 650:
                os.kill(pipeline.worker.pid, signal.SIGCONT)
            published = pipeline.worker.published
            next_run = pipeline._next_inference_s
            status = pipeline.estimate(pipeline.accept(sample))
            if pipeline._next_inference_s != next_run:
                windows[pipeline.ring.newest_time] = pipeline.window.input.copy()
                if not 500 <= i < 650:
                    _wait_for(
                        lambda p=published: (
                            pipeline.worker.latest is not None and pipeline.worker.published > p
                        )
                    )
            rows.append((i, status, pipeline.activation_age_us))
        newest = pipeline.worker.latest[0]
    finally:
        pipeline.close()
    np.testing.assert_allclose(
        newest.activations, np.clip(reference.infer(windows[newest.window_end_s]), 0, 1), atol=1e-7
    )
    answered = [r for r in rows if not r[1] & MODEL_NOT_READY]
    assert len(answered) > 700
    for i, status, age in answered:
        assert bool(status & ACTIVATION_STALE) == (age > limit_us), (i, status, age)
    stale = [i for i, status, _ in answered if status & ACTIVATION_STALE]
    assert stale and 520 <= stale[0] <= 531 and stale[-1] >= 640


def test_a_network_process_that_cannot_load_says_why(tmp_path, bundle):
    from edge.backends import BackendError
    from edge.inference_process import InferenceProcess

    with pytest.raises(BackendError, match="could not load the backend: BundleError"):
        InferenceProcess(
            tmp_path / "not a bundle", select_backend(bundle, "onnxruntime", threads=1)
        )
