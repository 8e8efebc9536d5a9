"""The network beside the answer path, and its activations carried to every sample.

The network's input grid runs at the bundle's rate (100 Hz): at a 1 kHz device,
ten consecutive windows differ only by a sub-grid shift, yet one evaluation costs
hundreds of microseconds on a CPU. So in ``model-rate`` mode the network runs
twice per model period by default (``InferenceSettings.runs_per_model_period``),
on the window that ends at the sample completing the period, on
its own thread (ONNX Runtime, TensorRT and PyTorch release the GIL while they
compute), and every sample is answered at once with the newest output *carried*
to its instant (``ActivationCarry``). The carry method was chosen by measurement
against per-sample inference on the same stream (scripts/carry_forward.py; the
figures are in the README). ``per-sample`` mode runs the network inline on every
sample's own window, as before.

Every answer states the age of its activations: the device time from the end of
the window the network saw to the sample answered (0 in per-sample mode).
"""

from __future__ import annotations

import math
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, TextIO

import numpy as np
from numba import njit

from edge.backends.base import Backend
from edge.realtime import run_in_background

INFERENCE_MODES = ("model-rate", "per-sample")
WORKERS = ("thread", "process")

BackendFallback = Callable[[str], Backend]
"""Given the name of the backend that failed, a loaded and warmed-up replacement."""


@dataclass(frozen=True)
class InferenceSettings:
    """How the network is scheduled.

    ``mode``: "model-rate" (``runs_per_model_period`` times per model period, results
    carried to each sample) or "per-sample" (inline on every sample's window).
    ``runs_per_model_period``: 2 by default, because the carry's error grows with
    the distance it extrapolates: on the default bundle the worst muscle's R² against
    per-sample inference is 0.986 at one run per model period and 0.999 at two
    (scripts/carry_forward.py, README); each run is one network evaluation off the
    answer path. ``threaded``: in model-rate
    mode, run the network on its own thread (False: inline at each model period,
    deterministic whatever the CPU speed, for replays as fast as possible); per-sample
    mode is always inline.
    ``max_activation_age_s``: an answer whose activations are older than this
    carries ACTIVATION_STALE. ``max_extrapolation_s``: the carry extrapolates at most
    this far past the newest output and holds the value reached beyond it.
    ``worker``: where the network runs off the answer path, a "thread" of this process
    or a "process" of its own (edge.inference_process). ``thread_niceness``: its Linux
    nice value, raised above the answer path's so that a sample arriving while the
    network computes on the same core gets the core at once (scripts/bench_edge.py
    --worker-nice measures it).
    """

    mode: str = "model-rate"
    runs_per_model_period: float = 2.0
    threaded: bool = True
    worker: str = "thread"
    max_activation_age_s: float = 0.03
    max_extrapolation_s: float = 0.02
    thread_niceness: int = 10

    def __post_init__(self) -> None:
        if self.mode not in INFERENCE_MODES:
            raise ValueError(
                f"inference mode must be one of {', '.join(INFERENCE_MODES)}, got {self.mode!r}"
            )
        if self.worker not in WORKERS:
            raise ValueError(
                f"the inference worker must be one of {', '.join(WORKERS)}, got {self.worker!r}"
            )
        if not self.runs_per_model_period > 0:
            raise ValueError(
                f"the network must run a positive number of times per model "
                f"period, got {self.runs_per_model_period}"
            )
        if not self.max_activation_age_s > 0:
            raise ValueError(
                f"the activation age limit must be positive, got {self.max_activation_age_s} s"
            )
        if not self.max_extrapolation_s >= 0:
            raise ValueError(
                f"the extrapolation horizon must be >= 0, got {self.max_extrapolation_s} s"
            )

    def network_rate_hz(self, model_rate_hz: float) -> float:
        """How often the network runs in model-rate mode, Hz, for a model at ``model_rate_hz``."""
        return model_rate_hz * self.runs_per_model_period

    @property
    def on_thread(self) -> bool:
        """Whether the network runs on its own thread."""
        return self.threaded and self.mode == "model-rate"

    @classmethod
    def for_model_rate(
        cls,
        rate_hz: float,
        mode: str = "model-rate",
        threaded: bool = True,
        max_activation_age_s: float | None = None,
        thread_niceness: int = 10,
        worker: str = "thread",
        inference_rate_hz: float | None = None,
    ) -> InferenceSettings:
        """Defaults scaled to the model's rate: stale after three model periods (one late
        network output is tolerated, two are not), extrapolation up to two periods;
        ``inference_rate_hz`` how often the network runs (default twice the model rate)."""
        period = 1.0 / rate_hz
        runs = 2.0 if inference_rate_hz is None else inference_rate_hz / rate_hz
        return cls(
            mode=mode,
            runs_per_model_period=runs,
            threaded=threaded,
            max_activation_age_s=(
                3 * period if max_activation_age_s is None else max_activation_age_s
            ),
            max_extrapolation_s=2 * period,
            thread_niceness=thread_niceness,
            worker=worker,
        )


class NetworkOutput(NamedTuple):
    """One network evaluation: its history ``generation``, the device time (s) of its
    window's newest sample, and the activations (M,) clipped to [0, 1]."""

    generation: int
    window_end_s: float
    activations: np.ndarray


OutputPair = tuple[NetworkOutput, NetworkOutput | None]
"""The newest output and the one before it, published together."""


class InferenceWorker:
    """Runs the backend on submitted windows, inline or on its own thread.

    ``submit(x, window_end_s, generation)`` hands over one window (copied). Inline,
    the network runs at once; threaded, the worker takes the newest window when it
    is free (a window replaced before the worker took it is counted in
    ``replaced``). ``latest`` is the newest ``OutputPair`` (None before the first),
    replaced by one reference assignment, so a reader never sees half an update. A
    failing backend is replaced through ``fallback`` (``degraded`` stays True
    afterwards); when none is left, ``failure`` holds the exception.
    """

    def __init__(
        self,
        backend: Backend,
        fallback: BackendFallback | None,
        input_shape: tuple[int, ...],
        n_muscles: int,
        threaded: bool,
        log: TextIO | None = None,
        niceness: int = 0,
    ) -> None:
        self.backend = backend
        self.fallback = fallback
        self.threaded = threaded
        self.niceness = niceness
        self.log = log if log is not None else sys.stderr
        self.latest: OutputPair | None = None
        self.published = 0
        self.replaced = 0
        self.degraded = False
        self.failure: BaseException | None = None
        self.errors: Counter[str] = Counter()
        self._out = np.zeros(n_muscles, dtype=np.float32)
        self._pending = np.zeros(input_shape, dtype=np.float32)
        self._working = np.zeros(input_shape, dtype=np.float32)
        self._pending_meta: tuple[float, int] | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None

    def submit(self, x: np.ndarray, window_end_s: float, generation: int) -> None:
        if not self.threaded:
            self._evaluate(x, window_end_s, generation)
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="inference", daemon=True)
            self._thread.start()
        with self._lock:
            if self._pending_meta is not None:
                self.replaced += 1
            np.copyto(self._pending, x)
            self._pending_meta = (window_end_s, generation)
        self._wake.set()

    def close(self) -> None:
        """Stop the thread after the evaluation in progress (if any)."""
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30.0)
            self._thread = None

    def _run(self) -> None:
        run_in_background(self.niceness)
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stop:
                return
            with self._lock:
                meta = self._pending_meta
                self._pending_meta = None
                self._pending, self._working = self._working, self._pending
            if meta is not None:
                try:
                    self._evaluate(self._working, *meta)
                except BaseException as exc:
                    self.failure = exc
                    return

    def _evaluate(self, x: np.ndarray, window_end_s: float, generation: int) -> None:
        while True:
            try:
                a = self.backend.infer(x, self._out)
                if not math.isfinite(float(a.sum())):
                    raise FloatingPointError("the network returned non-finite activations")
                break
            except Exception as exc:  # any backend failure: fall back, never stop
                if self.fallback is None:
                    raise
                failed = self.backend.name
                self.errors["backend"] += 1
                self.backend = self.fallback(failed)
                self.degraded = True
                print(
                    f"backend {failed} failed ({type(exc).__name__}: {exc}); "
                    f"falling back to {self.backend.name}",
                    file=self.log,
                    flush=True,
                )
        newest = NetworkOutput(generation, window_end_s, np.clip(a.astype(np.float64), 0.0, 1.0))
        previous = self.latest[0] if self.latest is not None else None
        self.latest = (newest, previous)
        self.published += 1


class ActivationCarry:
    """Activations at a sample's instant from the newest network outputs.

    Linear extrapolation through the newest two outputs of the current history
    (hold when there is only one), at most ``max_extrapolation_s`` past the
    newest; clipped to [0, 1]. A lookahead shifts both outputs and the sample by
    the same delay, so the same line serves.
    """

    def __init__(self, n_muscles: int, max_extrapolation_s: float) -> None:
        self.max_extrapolation_s = max_extrapolation_s
        self._pair: OutputPair | None = None
        self.slope = np.zeros(n_muscles)
        """Per muscle, 1/s: the line's slope (zero while only one output is known)."""
        extrapolate(self.slope, self.slope, 0.0, np.zeros(n_muscles))  # compile it now

    def prepare(
        self, pair: OutputPair, generation: int, t_s: float
    ) -> tuple[float, np.ndarray, float] | None:
        """(age s, newest activations, horizon s) for device time ``t_s``: the activations
        there are ``clip(newest + slope * horizon, 0, 1)`` (``extrapolate``); None when no
        output of this history exists yet."""
        newest, previous = pair
        if newest.generation != generation:
            return None
        if pair is not self._pair:
            self._pair = pair
            if (
                previous is not None
                and previous.generation == generation
                and newest.window_end_s > previous.window_end_s
            ):
                np.subtract(newest.activations, previous.activations, out=self.slope)
                self.slope /= newest.window_end_s - previous.window_end_s
            else:
                self.slope[:] = 0.0
        age = t_s - newest.window_end_s
        return age, newest.activations, min(max(age, 0.0), self.max_extrapolation_s)

    def at(self, pair: OutputPair, generation: int, t_s: float, out: np.ndarray) -> float | None:
        """Fill ``out`` (M,) with the activations at device time ``t_s``; returns their age
        (s), or None when no output of this history exists yet."""
        prepared = self.prepare(pair, generation, t_s)
        if prepared is None:
            return None
        age, newest, horizon = prepared
        extrapolate(newest, self.slope, horizon, out)
        return age


@njit(cache=True)
def extrapolate(
    start: np.ndarray, slope: np.ndarray, horizon_s: float, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """out = clip(start + slope * horizon_s, 0, 1), element by element."""
    for m in range(out.shape[0]):
        out[m] = min(max(start[m] + slope[m] * horizon_s, 0.0), 1.0)
