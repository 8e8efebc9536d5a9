"""The real-time loop: joint-angle frames in, muscle estimates out, one per sample.

Per sample (``EstimatePipeline``): sensor mapping and checks → ring buffer →
window at the bundle's rate from the device timestamps (edge/window.py) → the
newest network output carried to the sample's instant (edge/inference.py; the
network itself runs twice per model period by default on its own thread, or
inline per sample) → Hill forces and joint torques for the sample's own angles and
velocities (edge.hill, Numba) → estimate values. Around it (``Runtime``): a
sample source (edge/sources.py: a serial link, reopened when it disappears; the
simulated device; a replay), the skip policy, the Estimate frame, and the sinks
(edge/sinks.py: frames to the device, the log thread; edge/status.py: the live
status thread).

Policies, stated once:
- *Skip*: every read hands the loop all frames that arrived meanwhile, and every
  sample enters the ring (it is history for later windows). The older samples of
  a read are answered in order while the read is younger than ``skip_after_us``
  (a short burst, e.g. two frames in one USB packet, costs no answers); once the
  loop is that far behind it answers only the newest, counts the older ones as
  skipped, and the next Estimate carries the count. So ``samples_in ==
  estimates_out + skipped`` always.
- *Activation age*: each answer carries the device time from the end of the window
  the network saw to the sample answered; above the limit (the manifest's
  ``max_activation_age_ms``, or ``--max-activation-age``, else three model
  periods) it carries ACTIVATION_STALE (must not apply).
- *Lookahead*: a bundle with lookahead N predicts the instant N model steps
  (N / rate s) before the newest sample. The Estimate frame names the sample
  that triggered it (its seq and device timestamp); the estimated instant is that
  timestamp minus N / rate, which edge-run prints at startup and the log's
  ``time`` column holds.
- *Bad input*: a sample with an invalid or non-finite channel, or a timestamp that
  did not advance, is answered with zero values and INPUT_INVALID (must not apply);
  the ring holds the last valid angles in its place. An angle beyond the subject's
  joint range plus a margin is answered with the values computed from it and
  INPUT_OUT_OF_RANGE (advice: the muscle paths are extrapolated). Windows that
  still hold a held or missing (sequence gap) sample carry INPUT_GAP. Nothing
  non-finite is ever sent.
- *History restarts* (MODEL_NOT_READY, zero values until a full window and its
  first network output are back) after the link is reopened, a silence longer
  than a window, or a device clock that jumped backwards.
- *Backend failure*: the next backend of the fallback chain is loaded and warmed
  up, the failure is printed once, and every later estimate carries
  BACKEND_DEGRADED.
- *A 1.0 device* (its frames carry protocol minor 0): it does not know
  ACTIVATION_STALE, so STALE (which it does know as must-not-apply) is set with it;
  it reads three torques as hip, knee, ankle, so a host whose coordinates are
  others answers it with MODEL_NOT_READY (PROTOCOL.md, "Versions").
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from calib.coordinates import SAGITTAL_COORDINATES, opensim_coordinate
from calib.sensors import SensorMap
from edge.answer import answer_kernel
from edge.backends.base import Backend
from edge.bundle import Bundle
from edge.hill import HillModel
from edge.inference import ActivationCarry, BackendFallback, InferenceSettings, InferenceWorker
from edge.inference_process import InferenceProcess
from edge.realtime import LOOP_SWITCH_INTERVAL_S, SwitchInterval
from edge.ring_buffer import SampleRing
from edge.sinks import EstimateLog
from edge.sources import LINK_ERRORS, LinkLost, SampleSource
from edge.status import LatencyRecorder, RunCounters, StatusReporter, run_summary
from edge.window import SampleMapper, WindowBuilder, WindowSpec
from firmware_bridge import protocol as P
from firmware_bridge.codec import Heartbeat, Hello, JointSample, Message
from firmware_bridge.estimate_frames import EstimatePacker
from firmware_bridge.timestamps import WRAP_US, TimestampUnwrapper

FLAG_BITS = {f.name: 1 << f.bit for f in P.ESTIMATE_STATUS_FLAGS}
MODEL_NOT_READY = FLAG_BITS["MODEL_NOT_READY"]
STALE = FLAG_BITS["STALE"]
INPUT_OUT_OF_RANGE = FLAG_BITS["INPUT_OUT_OF_RANGE"]
INPUT_GAP = FLAG_BITS["INPUT_GAP"]
INPUT_INVALID = FLAG_BITS["INPUT_INVALID"]
BACKEND_DEGRADED = FLAG_BITS["BACKEND_DEGRADED"]
ACTIVATION_STALE = FLAG_BITS["ACTIVATION_STALE"]
ZEROED = MODEL_NOT_READY | INPUT_INVALID
"""Flags under which the estimate's values are zero."""

DEVICE_RESET_S = 1.0
"""A device clock that runs backwards by more than this is a restarted device."""
MAX_WIRE_SKIPPED = (1 << 8 * P.WIRE_TYPES["u16"][1]) - 1
MAX_WIRE_U32 = (1 << 8 * P.WIRE_TYPES["u32"][1]) - 1
"""The largest values of the wire's u16 and u32 fields (firmware_bridge.protocol)."""
DEVICE_SILENT_HEARTBEATS = 3
"""No JointSample for this many heartbeat periods: the device is gone (PROTOCOL.md)."""
PER_SAMPLE_SKIP_AFTER_US = 1000
"""Per-sample inference answers the older samples of a read only within this (µs)."""
VERSION_1_0_COORDINATES = SAGITTAL_COORDINATES
"""The torques a protocol 1.0 receiver reads, in order (without the side suffix)."""


def flag_names(status: int) -> list[str]:
    return [name for name, bit in FLAG_BITS.items() if status & bit]


class EstimatePipeline:
    """Everything between a decoded sample and the estimate's values; no I/O.

    ``accept(sample)`` maps, checks and stores one sample and returns its status
    bits; ``estimate(status)`` computes the values for the newest accepted sample
    into ``activations`` and ``forces`` (one per reported muscle, ``muscles``) and
    ``torques`` (one per balanced coordinate, ``coordinates``), sets
    ``activation_age_us`` and returns the final status.

    The ring and the window hold the coordinates the sensors measure (``measured``,
    ``calib.coordinates`` order); the network reads the bundle's
    ``input_coordinates`` among them, which must all be measured. The Hill model
    evaluates every modelled muscle at the subject's whole pose, the measured
    coordinates from the sample and the others at 0 (neutral hip adduction and
    rotation for a sagittal device). ``report_muscles`` (default the manifest's
    ``report_muscles``) chooses what is answered; the torques are about
    ``torque_coordinates``, by default the manifest's ``balanced_coordinates``, the
    moments the network learned to balance.

    The ring holds one window of a device up to ``max_device_rate_hz``; a device
    whose Hello announces a faster rate grows it (``ensure_device_rate``).
    ``close()`` stops the inference thread.
    """

    def __init__(
        self,
        bundle: Bundle,
        backend: Backend,
        hill: HillModel,
        sensors: SensorMap,
        inference: InferenceSettings | None = None,
        range_margin_rad: float = 0.1,
        max_device_rate_hz: float = 5000.0,
        fallback: BackendFallback | None = None,
        log: TextIO | None = None,
        report_muscles: tuple[str, ...] | None = None,
        torque_coordinates: tuple[str, ...] | None = None,
    ) -> None:
        manifest = bundle.manifest
        subject = bundle.subject
        measured = tuple(sensors.coordinates)
        missing = [c for c in manifest.input_coordinates if c not in measured]
        if missing:
            raise ValueError(
                f"the bundle's network reads {', '.join(manifest.input_coordinates)} but the "
                f"sensor mapping measures {', '.join(measured)}: pass --sensors with a "
                f"sensors.json whose channels name {', '.join(missing)}"
            )
        reported = tuple(manifest.report_muscles if report_muscles is None else report_muscles)
        unknown = [name for name in reported if name not in manifest.muscles]
        if unknown or not reported:
            raise ValueError(
                f"muscles to report {list(unknown or reported)} are not among the "
                f"bundle's {len(manifest.muscles)} ({', '.join(manifest.muscles)})"
            )
        self.measured = measured
        self.spec = WindowSpec(
            manifest.window, manifest.sample_rate_hz, manifest.lookahead, n_joints=len(measured)
        )
        if inference is None:
            age_ms = manifest.max_activation_age_ms
            inference = InferenceSettings.for_model_rate(
                self.spec.rate_hz, max_activation_age_s=None if age_ms is None else age_ms / 1e3
            )
        self.inference = inference
        self.muscles = reported
        torque_coordinates = tuple(torque_coordinates or manifest.balanced_coordinates)
        if not set(torque_coordinates) <= set(hill.coordinates):
            raise ValueError(
                f"torque coordinates {list(torque_coordinates)} are not all among "
                f"the subject's {list(hill.coordinates)}"
            )
        self.coordinates = tuple(
            opensim_coordinate(c, subject.body.side) for c in torque_coordinates
        )
        """The torques' coordinates as OpenSim names them on the subject's side
        (``hip_flexion_r``, ...): the host Hello's joint_names and the log's columns."""
        self.hill = hill
        self.pose_index = np.array([hill.coordinates.index(c) for c in measured], dtype=np.int64)
        """Where each measured coordinate sits in the subject's whole pose."""
        self.report_index = np.array(
            [manifest.muscles.index(name) for name in reported], dtype=np.int64
        )
        """Each reported muscle's place among the modelled ones."""
        self.torque_index = np.array(
            [hill.coordinates.index(c) for c in torque_coordinates], dtype=np.int64
        )
        """Each torque's coordinate's place in the subject's pose."""
        ranges = subject.coordinate_ranges
        self.mapper = SampleMapper(
            sensors, measured, tuple(tuple(ranges[i]) for i in self.pose_index), range_margin_rad
        )
        self.ring = SampleRing(
            math.ceil(self.spec.history_s * max_device_rate_hz) + 8, len(measured)
        )
        self.window = WindowBuilder(
            self.spec, tuple(measured.index(c) for c in manifest.input_coordinates)
        )
        self.window.warmup()
        self.unwrapper = TimestampUnwrapper()
        m = manifest.n_muscles
        if inference.on_thread and inference.worker == "process":
            self.worker: InferenceWorker | InferenceProcess = InferenceProcess(
                bundle.directory, backend, inference.thread_niceness, log
            )
        else:
            self.worker = InferenceWorker(
                backend,
                fallback,
                bundle.input_shape,
                m,
                threaded=inference.on_thread,
                log=log,
                niceness=inference.thread_niceness,
            )
        self.carry = ActivationCarry(m, inference.max_extrapolation_s)
        self._inference_period_s = (
            0.0
            if inference.mode == "per-sample"
            else 1.0 / inference.network_rate_hz(self.spec.rate_hz) - 1e-6
        )
        self._modelled_activations = np.zeros(m)
        self.activations = np.zeros(len(reported))
        self.forces = np.zeros(len(reported))
        self.torques = np.zeros(len(self.coordinates))
        self._selection = (
            self.pose_index,
            np.zeros(hill.n_coordinates),
            np.zeros(hill.n_coordinates),
            hill.coordinate_index,
            *hill.kernel_buffers,
            self.report_index,
            self.torque_index,
            self.activations,
            self.forces,
            self.torques,
        )
        """answer_kernel's arguments after the activations: the pose, the Hill model's
        buffers, what is reported and the buffers it lands in."""
        self.activation_age_us = 0
        self._max_age_us = round(inference.max_activation_age_s * 1e6)
        self.held = np.zeros(len(measured))
        self.has_held = False
        self.last_seq: int | None = None
        self.suspect_until_s = -math.inf
        self.sample_time_s = 0.0
        self.generation = 0
        self._next_inference_s = -math.inf
        self._events: Counter[str] = Counter()
        self._compile_answer_kernel(m)

    def _compile_answer_kernel(self, n_muscles: int) -> None:
        """Compile (or load from Numba's cache) the per-sample kernel before the loop starts,
        on a throwaway ring with the live types."""
        ring = SampleRing(4, self.ring.n_joints)
        for i in range(4):
            ring.push(i, i * self.spec.history_s, np.zeros(self.ring.n_joints))
        answer_kernel(
            *self.window.kernel_inputs(ring),
            self.spec.answered_row,
            np.zeros(n_muscles),
            self.carry.slope,
            0.0,
            self._modelled_activations,
            *self._selection,
        )
        self.zero_values(0)

    @property
    def backend(self) -> Backend:
        return self.worker.backend

    @backend.setter
    def backend(self, backend: Backend) -> None:
        self.worker.backend = backend

    @property
    def events(self) -> Counter[str]:
        """Runtime events counted here and by the inference worker."""
        return self._events + self.worker.errors

    def close(self) -> None:
        self.worker.close()

    def _new_history(self) -> None:
        """Forget the ring and the network outputs that belong to it."""
        self.ring.clear()
        self.generation += 1
        self._next_inference_s = -math.inf

    def restart_history(self) -> None:
        """Forget the ring and the device clock (reconnect, device restart)."""
        self._new_history()
        self.unwrapper = TimestampUnwrapper()
        self.last_seq = None
        self.suspect_until_s = -math.inf

    def ensure_device_rate(self, rate_hz: float) -> None:
        """Grow the ring when a device announces more samples per window than it holds."""
        needed = math.ceil(self.spec.history_s * rate_hz * 1.5) + 8
        if needed > self.ring.capacity:
            self.ring = SampleRing(needed, self.ring.n_joints)
            self.restart_history()

    def accept(self, sample: JointSample) -> int:
        """Store one sample in the ring; returns the status bits that belong to it."""
        status = 0
        t = self.unwrapper.unwrap(sample.timestamp_us) * 1e-6
        if len(self.ring):
            dt = t - self.ring.newest_time
            if dt <= 0.0:
                self._events["timestamp"] += 1
                if dt > -DEVICE_RESET_S:
                    self.sample_time_s = self.ring.newest_time
                    return INPUT_INVALID
                self._new_history()
            elif dt > self.spec.history_s:
                self._new_history()
        if (
            self.last_seq is not None
            and len(self.ring)
            and (sample.seq - self.last_seq) % (MAX_WIRE_U32 + 1) != 1
        ):
            self.suspect_until_s = t
        self.last_seq = sample.seq
        self.sample_time_s = t
        valid, in_range = self.mapper.map(sample.values, sample.valid_mask)
        if valid:
            self.held[:] = self.mapper.angles
            self.has_held = True
            if not in_range:
                status |= INPUT_OUT_OF_RANGE
        else:
            status |= INPUT_INVALID
            self.suspect_until_s = t
            if not self.has_held:
                return status | MODEL_NOT_READY
        self.ring.push(sample.seq, t, self.held)
        return status

    def estimate(self, status: int) -> int:
        """Values for the newest accepted sample; returns the final status bits."""
        if not self.window.ready(self.ring):
            status |= MODEL_NOT_READY
        if status & ZEROED:
            return self.zero_values(status)
        t = self.ring.newest_time
        if t - self.spec.history_s <= self.suspect_until_s:
            status |= INPUT_GAP
        worker = self.worker
        due = t >= self._next_inference_s
        if due:
            self._next_inference_s = t + self._inference_period_s
            if not worker.threaded:  # inline: this sample's own output is there at once
                worker.submit(self.window.build(self.ring), t, self.generation)
        if worker.failure is not None:
            raise RuntimeError(
                f"inference failed and no fallback backend is left: "
                f"{type(worker.failure).__name__}: {worker.failure}"
            )
        pair = worker.latest
        prepared = None if pair is None else self.carry.prepare(pair, self.generation, t)
        if prepared is None:  # the first network output of this history is not back yet
            if due and worker.threaded:
                worker.submit(self.window.build(self.ring), t, self.generation)
            return self.zero_values(status | MODEL_NOT_READY)
        age, newest, horizon_s = prepared
        finite = answer_kernel(
            *self.window.kernel_inputs(self.ring),
            self.spec.answered_row,
            newest,
            self.carry.slope,
            horizon_s,
            self._modelled_activations,
            *self._selection,
        )
        if due and worker.threaded:  # the window the kernel just built
            worker.submit(self.window.input, t, self.generation)
        if worker.degraded:
            status |= BACKEND_DEGRADED
        # whole µs, as the Estimate and the log carry it: the flag agrees with what they show
        self.activation_age_us = age_us = min(max(round(age * 1e6), 0), MAX_WIRE_U32)
        if age_us > self._max_age_us:
            status |= ACTIVATION_STALE
        if not finite:
            self._events["nonfinite_output"] += 1
            return self.zero_values(status | INPUT_INVALID)
        return status

    def zero_values(self, status: int) -> int:
        """Set every value to zero (an answer that must not be applied); returns ``status``
        with BACKEND_DEGRADED when that holds."""
        if self.worker.degraded:
            status |= BACKEND_DEGRADED
        self.activations[:] = 0.0
        self.forces[:] = 0.0
        self.torques[:] = 0.0
        self.activation_age_us = 0
        return status

    @property
    def estimated_time_s(self) -> float:
        """Device time (s) of the instant the last estimate describes."""
        return self.sample_time_s - self.spec.delay_s


@dataclass(frozen=True)
class RuntimeConfig:
    """How long edge-run runs and how it paces itself.

    ``duration_s`` None runs until stopped; ``read_timeout_s`` bounds how long the
    loop waits for input before it checks for stop requests; ``stale_after_us``
    marks an answer STALE when it left later than this after its sample arrived;
    ``skip_after_us``: when one read brings several samples, the older ones are
    answered only while less than this has passed since the read (0: answer the
    newest only; None: ``stale_after_us`` in model-rate mode, where an answer costs
    tens of microseconds, and 1000 in per-sample mode, where each costs an
    inference). ``view``: the live estimates as a "line" or one "bars" per muscle.
    ``switch_interval_s``: the interpreter's GIL switch interval while the loop runs
    (edge.realtime).
    """

    log_path: Path | None = None
    duration_s: float | None = None
    json_status: bool = False
    read_timeout_s: float = 0.05
    reopen_period_s: float = 0.2
    heartbeat_period_s: float = P.DEFAULT_HEARTBEAT_PERIOD_MS / 1000.0
    stale_after_us: int = P.DEFAULT_MAX_ESTIMATE_AGE_MS * 1000
    skip_after_us: int | None = None
    log_queue_size: int = 65536
    status_period_s: float = 1.0
    view: str = "line"
    switch_interval_s: float = LOOP_SWITCH_INTERVAL_S


class Runtime:
    """Runs the loop on a source until ``stop()``, the duration, the end of the device's
    stream, or a signal. The caller owns the source's life cycle (``with source:``); the
    runtime opens its link, reopens it when it is lost, and closes it at the end."""

    def __init__(
        self,
        config: RuntimeConfig,
        source: SampleSource,
        pipeline: EstimatePipeline,
        log: TextIO | None = None,
    ) -> None:
        self.config = config
        self.source = source
        self.pipeline = pipeline
        self.muscles = pipeline.muscles
        self.coordinates = pipeline.coordinates
        self.log = log if log is not None else sys.stderr
        self.counters = RunCounters()
        self.latency = LatencyRecorder()
        self.activation_age = LatencyRecorder()
        self.estimate_log: EstimateLog | None = None
        self.started = time.monotonic()
        self.ended = "stopped"
        self._stop = threading.Event()
        self._connected = False
        self._estimate_seq = 0
        self._heartbeat_seq = 0
        self._hello_seq = 0
        self._last_sample_at: float | None = None
        self._device_silent = False
        self._device_described = ""
        self._pending_skipped = 0
        self._next_heartbeat = 0.0
        self._status_bits = MODEL_NOT_READY
        self._n_muscles = len(self.muscles)
        self._packer = EstimatePacker(self._n_muscles, len(self.coordinates))
        self._version_1_0_torques = (
            tuple(c.rsplit("_", 1)[0] for c in self.coordinates) == VERSION_1_0_COORDINATES
        )
        self._version_1_0_said = False
        skip_after_us = config.skip_after_us
        if skip_after_us is None:
            per_sample = pipeline.inference.mode == "per-sample"
            skip_after_us = PER_SAMPLE_SKIP_AFTER_US if per_sample else config.stale_after_us
        self._skip_after_ns = skip_after_us * 1000

    def stop(self) -> None:
        """Ask the loop to finish (safe from signal handlers and other threads)."""
        self._stop.set()

    # ---- the link ----------------------------------------------------------------

    def _say(self, message: str) -> None:
        print(message, file=self.log, flush=True)

    def _open(self) -> bool:
        """Open the source's link; False (and retried later) while it is absent."""
        if not self.source.open():
            return False
        self._connected = True
        self.pipeline.restart_history()
        self._last_sample_at = None
        self._device_silent = False
        self._status_bits = MODEL_NOT_READY
        self._greet(reply_requested=1)
        return True

    def _greet(self, reply_requested: int) -> None:
        """Send the host's Hello wherever the device can hear it."""
        hello = self._hello(reply_requested)
        if self.source.output is not None:
            self.source.output.send(hello)
            self.source.greet_input_side(hello)

    def _disconnected(self, reason: str) -> None:
        self.counters.link_lost += 1
        self._say(f"link lost ({reason}); reopening {self.source.name} when it returns")
        self.source.close()
        self._connected = False

    def _reopen(self) -> None:
        while self._why_stop() is None:
            if self._open():
                self.counters.link_reopened += 1
                self._say(f"link reopened: {self.source.name}")
                return
            self._stop.wait(self.config.reopen_period_s)

    def _hello(self, reply_requested: int) -> Hello:
        self._hello_seq += 1
        return Hello(
            seq=self._hello_seq,
            timestamp_us=self._host_us(),
            role=P.ROLE_HOST,
            sample_rate_hz=self.pipeline.spec.rate_hz,
            joint_names=self.coordinates,
            muscle_names=self.muscles,
            heartbeat_period_ms=round(self.config.heartbeat_period_s * 1000),
            reply_requested=reply_requested,
        )

    def _host_us(self) -> int:
        return time.perf_counter_ns() // 1000 % WRAP_US

    # ---- the loop ----------------------------------------------------------------

    def _why_stop(self) -> str | None:
        d = self.config.duration_s
        if self._stop.is_set():
            return "stopped"
        if d is not None and time.monotonic() - self.started >= d:
            return "duration"
        return None

    def run(self) -> dict:
        """Run until stopped; returns the run summary."""
        c = self.config
        if c.log_path is not None:
            self.estimate_log = EstimateLog(
                c.log_path, self.muscles, self.coordinates, c.log_queue_size
            )
        reporter = StatusReporter(
            self.counters,
            self.latency,
            json_lines=c.json_status,
            period_s=c.status_period_s,
            estimate=self.pipeline,
            muscles=self.muscles,
            view=c.view,
        )
        self.started = time.monotonic()
        try:
            if not self._open():
                self._say(self.source.waiting_note())
                self._reopen()
            with reporter, SwitchInterval(c.switch_interval_s):
                self.ended = self._loop()
        finally:
            self.source.close()
            self.pipeline.close()
            if self.estimate_log is not None:
                self.estimate_log.close()
        return self.summary()

    def summary(self) -> dict:
        c = self.counters
        if self.estimate_log is not None:
            c.log_overflow = self.estimate_log.overflowed
            if self.estimate_log.error:
                c.events["log"] += 1
        events = Counter(c.events)
        events.update(self.pipeline.events)
        events.update(self.source.output_events)
        merged = RunCounters(
            c.samples_in,
            c.estimates_out,
            c.skipped,
            c.log_overflow,
            c.link_lost,
            c.link_reopened,
            c.device_silences,
            events,
            c.flags,
        )
        return run_summary(
            merged,
            self.latency,
            self.activation_age,
            time.monotonic() - self.started,
            self.source.decoder_errors,
            self.ended,
        )

    def _loop(self) -> str:
        source = self.source
        while True:
            why = self._why_stop()
            if why is not None:
                return why
            if not self._connected:
                self._reopen()
                continue
            # Noted before the read: an empty read then shows the device's last sample,
            # sent before its stream ended, has been answered.
            ended = source.ended
            try:
                messages = source.read(self.config.read_timeout_s)
                received_ns = time.perf_counter_ns()
                if not messages and ended:
                    return "stream ended"
                samples = [m for m in messages if type(m) is JointSample]
                if len(samples) != len(messages):
                    self._note_device_messages(messages)
                if samples:
                    self._on_samples(samples, received_ns)
                self._keep_alive()
            except (LinkLost, *LINK_ERRORS) as exc:  # the device went away, or a write failed
                self._disconnected(str(exc))

    def _on_samples(self, samples: list[JointSample], received_ns: int) -> None:
        self._last_sample_at = time.monotonic()
        if self._device_silent:
            self._device_silent = False
            self._say("device samples resumed")
        if self.source.sender_minor == 0 and not self._version_1_0_said:
            self._version_1_0_said = True
            self._say(
                "the device speaks protocol 1.0: ACTIVATION_STALE answers also carry "
                "STALE"
                + (
                    ""
                    if self._version_1_0_torques
                    else "; it reads three torques as hip, knee, ankle, which this "
                    "subject's coordinates are not, so every answer carries "
                    "MODEL_NOT_READY: update the firmware's codec to 1.1"
                )
            )
        self._answer(samples, received_ns)

    def _keep_alive(self) -> None:
        """The device-silence check and the host's heartbeat."""
        now = time.monotonic()
        silent_after = DEVICE_SILENT_HEARTBEATS * self.config.heartbeat_period_s
        if (
            not self._device_silent
            and not self.source.ended
            and self._last_sample_at is not None
            and now - self._last_sample_at > silent_after
        ):
            self._device_silent = True
            self._status_bits = MODEL_NOT_READY
            self.counters.device_silences += 1
            self._say(
                f"no samples from the device for {silent_after:g} s while the link is "
                f"open: it stopped sending; estimating resumes with its next sample"
            )
        output = self.source.output
        if now >= self._next_heartbeat and output is not None:
            self._next_heartbeat = now + self.config.heartbeat_period_s
            self._heartbeat_seq += 1
            output.send(
                Heartbeat(
                    self._heartbeat_seq,
                    self._host_us(),
                    P.ROLE_HOST,
                    round(self.config.heartbeat_period_s * 1000),
                    self._status_bits & 0xFFFF,
                )
            )

    def _note_device_messages(self, messages: list[Message]) -> None:
        """Check the device's Hello against the sensor mapping (heartbeats need nothing)."""
        for m in messages:
            if type(m) is not Hello or m.role != P.ROLE_DEVICE:
                continue
            if m.reply_requested:
                self._greet(reply_requested=0)
            n_expected = self.pipeline.mapper.n_channels
            names = ", ".join(m.joint_names) or "unnamed"
            encoding = "counts" if m.encoding == P.ENCODING_COUNTS else "radians"
            described = (
                f"device: {len(m.joint_names)} channels ({names}) in {encoding} at "
                f"{m.sample_rate_hz:g} Hz"
            )
            if described == self._device_described:
                continue
            self._device_described = described
            self._say(described)
            if math.isfinite(m.sample_rate_hz) and 0 < m.sample_rate_hz <= 1e6:
                self.pipeline.ensure_device_rate(m.sample_rate_hz)
            if m.joint_names and len(m.joint_names) != n_expected:
                self.counters.events["hello_mismatch"] += 1
                self._say(
                    f"warning: the device sends {len(m.joint_names)} channels but the "
                    f"sensor mapping expects {n_expected}: pass --sensors with a "
                    f"sensors.json for this device; its samples are flagged INPUT_INVALID"
                )
            if m.encoding == P.ENCODING_COUNTS and all(g == 1.0 for g in self.pipeline.mapper.gain):
                self.counters.events["hello_mismatch"] += 1
                self._say(
                    "warning: the device sends raw counts but the sensor mapping has a "
                    "scale of 1 rad per count: pass --sensors with the counts' scale "
                    "(2π / counts per revolution)"
                )

    def _answer(self, samples: list[JointSample], received_ns: int) -> None:
        """Answer the samples of one read: older ones while still fresh, the newest always.

        A write that fails for good (the link is lost) leaves that sample and the rest of
        the read unanswered: they count as skipped and the exception propagates."""
        pipeline = self.pipeline
        counters = self.counters
        counters.samples_in += len(samples)
        budget_ns = self._skip_after_ns
        last = len(samples) - 1
        for i, sample in enumerate(samples):
            status = pipeline.accept(sample)
            if i < last and time.perf_counter_ns() - received_ns >= budget_ns:
                counters.skipped += 1
                self._pending_skipped += 1
                continue
            try:
                self._emit(sample, pipeline.estimate(status), received_ns)
            except LINK_ERRORS:
                counters.skipped += len(samples) - i
                self._pending_skipped += len(samples) - i
                raise

    def _emit(self, sample: JointSample, status: int, received_ns: int) -> None:
        """Send, count and log the estimate the pipeline holds for ``sample``."""
        pipeline = self.pipeline
        counters = self.counters
        latency_us = (time.perf_counter_ns() - received_ns) // 1000
        if latency_us > self.config.stale_after_us:
            status |= STALE
        if self.source.sender_minor == 0:
            status = self._for_version_1_0(status)
        skipped = self._pending_skipped
        age_us = pipeline.activation_age_us
        output = self.source.output
        if output is not None:
            output.send_frame(
                self._packer.pack(
                    self._estimate_seq + 1,
                    self._host_us(),
                    sample.seq,
                    sample.timestamp_us,
                    status,
                    min(skipped, MAX_WIRE_SKIPPED),
                    min(latency_us, MAX_WIRE_U32),
                    pipeline.activations,
                    pipeline.forces,
                    pipeline.torques,
                    age_us,
                )
            )
        self._estimate_seq += 1
        self._pending_skipped = 0
        latency_us = (time.perf_counter_ns() - received_ns) // 1000
        counters.estimates_out += 1
        self.latency.record(latency_us)
        self.activation_age.record(age_us)
        self._status_bits = status
        if status:
            for name in flag_names(status):
                counters.flags[name] += 1
        if self.estimate_log is not None:
            row = self.estimate_log.new_row()
            m = self._n_muscles
            row[0] = pipeline.estimated_time_s
            row[1] = pipeline.sample_time_s
            row[2] = sample.seq
            row[3] = status
            row[4] = skipped
            row[5] = latency_us
            row[6] = age_us
            row[7 : 7 + m] = pipeline.activations
            row[7 + m : 7 + 2 * m] = pipeline.forces
            row[7 + 2 * m :] = pipeline.torques
            self.estimate_log.submit(row)

    def _for_version_1_0(self, status: int) -> int:
        """The status a protocol 1.0 device reads right (see the module's policies)."""
        if status & ACTIVATION_STALE:
            status |= STALE
        if not self._version_1_0_torques:
            status = self.pipeline.zero_values(status | MODEL_NOT_READY)
        return status
