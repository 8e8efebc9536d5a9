"""The real-time loop: joint-angle frames in, muscle estimates out, one per sample.

Per sample (``EstimatePipeline``): sensor mapping and checks → ring buffer →
window at the bundle's rate from the device timestamps (edge/window.py) →
inference → Hill forces and joint torques (edge.hill, Numba) → estimate values.
Around it (``Runtime``): the link (reopened when it disappears), the stream
decoder, the skip policy, the Estimate frame, the log thread, the status thread.

Policies, stated once:
- *Skip*: every read hands the loop all frames that arrived meanwhile, and every
  sample enters the ring (it is history for later windows). The older samples of
  a read are answered in order while the read is younger than ``skip_after_us``
  (a short burst, e.g. two frames in one USB packet, costs no answers); once the
  loop is that far behind (input outpaces the model) it answers only the newest,
  counts the older ones as skipped, and the next Estimate carries the count. So
  ``samples_in == estimates_out + skipped`` always and no answer is older than
  about ``skip_after_us`` plus one inference.
- *Lookahead*: a bundle with lookahead N predicts the instant N model steps
  (N / rate s) before the newest sample. The Estimate frame names the sample
  that triggered it (its seq and device timestamp, so the device can match
  answers to samples); the estimated instant is that timestamp minus N / rate,
  which edge-run prints at startup and the log's ``time`` column holds.
- *Bad input*: a sample with an invalid or non-finite channel (INPUT_INVALID) or
  an angle outside the subject's joint range plus a margin (INPUT_OUT_OF_RANGE)
  is answered with zero activations, forces and torques (an assistive device
  then applies no assistance). The ring holds the last valid angles in its place,
  and windows that still contain a held or missing sample (sequence gap) carry
  INPUT_GAP. Nothing non-finite is ever sent.
- *History restarts* (MODEL_NOT_READY, zero values until a full window is back)
  after a reconnect, a time gap longer than a window, or a device clock that
  jumped backwards.
- *Backend failure*: the next backend of the fallback chain is loaded and warmed
  up, the failure is printed once, and every later estimate carries
  BACKEND_DEGRADED.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from serial import SerialException, SerialTimeoutException

from edge.realtime import SwitchInterval
from edge.ring_buffer import SampleRing
from edge.sinks import EstimateLog
from edge.status import LatencyRecorder, RunCounters, StatusReporter, run_summary
from edge.window import SampleMapper, WindowBuilder, WindowSpec
from firmware_bridge import protocol as P
from firmware_bridge.codec import Estimate, Heartbeat, Hello, JointSample, StreamDecoder, encode
from firmware_bridge.timestamps import TimestampUnwrapper

FLAG_BITS = {f.name: 1 << f.bit for f in P.ESTIMATE_STATUS_FLAGS}
MODEL_NOT_READY = FLAG_BITS["MODEL_NOT_READY"]
STALE = FLAG_BITS["STALE"]
INPUT_OUT_OF_RANGE = FLAG_BITS["INPUT_OUT_OF_RANGE"]
INPUT_GAP = FLAG_BITS["INPUT_GAP"]
INPUT_INVALID = FLAG_BITS["INPUT_INVALID"]
BACKEND_DEGRADED = FLAG_BITS["BACKEND_DEGRADED"]
ZEROED = MODEL_NOT_READY | INPUT_INVALID | INPUT_OUT_OF_RANGE
"""Flags under which the estimate's values are zero."""

FALLBACK_ORDER = ("tensorrt", "onnxruntime", "torch")
DEVICE_RESET_S = 1.0
"""A device clock that runs backwards by more than this is a restarted device."""
MAX_WIRE_SKIPPED = 0xFFFF
DEVICE_SILENT_HEARTBEATS = 3
"""No JointSample for this many heartbeat periods: the device is gone (PROTOCOL.md)."""
LINK_ERRORS = (SerialException, OSError)
"""What pyserial raises for a port that is absent or vanished."""


def _nonblocking_fd(link: Any) -> int | None:
    """The link's file descriptor when it is a non-blocking POSIX port, else None."""
    try:
        fd = link.fileno()
    except (AttributeError, OSError, ValueError, SerialException):
        return None
    if not isinstance(fd, int) or os.get_blocking(fd):
        return None
    return fd


def flag_names(status: int) -> list[str]:
    return [name for name, bit in FLAG_BITS.items() if status & bit]


class EstimatePipeline:
    """Everything between a decoded sample and the estimate's values; no I/O.

    ``accept(sample)`` maps, checks and stores one sample and returns its status
    bits; ``estimate(status)`` computes the values for the newest accepted sample
    into ``activations``, ``forces``, ``torques`` and returns the final status.
    The ring holds one window of a device up to ``max_device_rate_hz``; a device
    whose Hello announces a faster rate grows it (``ensure_device_rate``).
    """

    def __init__(
        self,
        bundle: Any,
        backend: Any,
        hill: Any,
        sensors: Any,
        range_margin_rad: float = 0.1,
        max_device_rate_hz: float = 5000.0,
        fallback: Any = None,
        log: TextIO | None = None,
    ) -> None:
        manifest = bundle.manifest
        self.spec = WindowSpec(manifest.window, manifest.sample_rate_hz, manifest.lookahead)
        self.backend = backend
        self.hill = hill
        self.fallback = fallback
        self.log = log if log is not None else sys.stderr
        ranges = tuple(tuple(bundle.subject.joints[j].range) for j in ("hip", "knee", "ankle"))
        self.mapper = SampleMapper(sensors, ranges, range_margin_rad)
        self.ring = SampleRing(math.ceil(self.spec.history_s * max_device_rate_hz) + 8)
        self.window = WindowBuilder(self.spec)
        self.window.warmup()
        self.unwrapper = TimestampUnwrapper()
        m = manifest.n_muscles
        self.activations = np.zeros(m)
        self.forces = np.zeros(m)
        self.torques = np.zeros(3)
        self.held = np.zeros(3)
        self.has_held = False
        self.last_seq: int | None = None
        self.suspect_until_s = -math.inf
        self.degraded = False
        self.sample_time_s = 0.0
        self.errors: dict[str, int] = {}

    def restart_history(self) -> None:
        """Forget the ring and the device clock (reconnect, device restart)."""
        self.ring.clear()
        self.unwrapper = TimestampUnwrapper()
        self.last_seq = None
        self.suspect_until_s = -math.inf

    def ensure_device_rate(self, rate_hz: float) -> None:
        """Grow the ring when a device announces more samples per window than it holds."""
        needed = math.ceil(self.spec.history_s * rate_hz * 1.5) + 8
        if needed > self.ring.capacity:
            self.ring = SampleRing(needed)
            self.restart_history()

    def _count(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def accept(self, sample: JointSample) -> int:
        """Store one sample in the ring; returns the status bits that belong to it."""
        status = 0
        t = self.unwrapper.unwrap(sample.timestamp_us) * 1e-6
        if len(self.ring):
            dt = t - self.ring.newest_time
            if dt <= 0.0:
                self._count("timestamp")
                if dt > -DEVICE_RESET_S:
                    self.sample_time_s = self.ring.newest_time
                    return INPUT_INVALID
                self.ring.clear()
            elif dt > self.spec.history_s:
                self.ring.clear()
        if (
            self.last_seq is not None
            and len(self.ring)
            and (sample.seq - self.last_seq) % (1 << 32) != 1
        ):
            self.suspect_until_s = t
        self.last_seq = sample.seq
        self.sample_time_s = t
        valid, in_range = self.mapper.map(sample.values, sample.valid_mask)
        if valid and in_range:
            self.held[:] = self.mapper.angles
            self.has_held = True
        else:
            status |= INPUT_INVALID if not valid else INPUT_OUT_OF_RANGE
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
            if self.degraded:
                status |= BACKEND_DEGRADED
            self.activations[:] = 0.0
            self.forces[:] = 0.0
            self.torques[:] = 0.0
            return status
        x = self.window.build(self.ring)
        if self.ring.newest_time - self.spec.history_s <= self.suspect_until_s:
            status |= INPUT_GAP
        a = self._infer(x)
        if self.degraded:
            status |= BACKEND_DEGRADED
        np.clip(a, 0.0, 1.0, out=self.activations)
        force, _, torque = self.hill.evaluate(
            self.activations, self.window.answered_angles, self.window.answered_velocities
        )
        self.forces[:] = force
        self.torques[:] = torque
        # a sum is finite only when every term is: one reduction instead of two scans
        if not math.isfinite(self.forces.sum() + self.torques.sum()):
            self._count("nonfinite_output")
            self.activations[:] = 0.0
            self.forces[:] = 0.0
            self.torques[:] = 0.0
            status |= INPUT_INVALID
        return status

    def _infer(self, x: np.ndarray) -> np.ndarray:
        while True:
            try:
                a = np.asarray(self.backend.infer(x), dtype=np.float64)
                if math.isfinite(a.sum()):
                    return a
                raise FloatingPointError("the network returned non-finite activations")
            except Exception as exc:  # any backend failure: fall back, never stop
                if self.fallback is None:
                    raise
                failed = self.backend.name
                self._count("backend")
                self.backend = self.fallback(failed)
                self.degraded = True
                print(
                    f"backend {failed} failed ({type(exc).__name__}: {exc}); "
                    f"falling back to {self.backend.name}",
                    file=self.log,
                    flush=True,
                )

    @property
    def estimated_time_s(self) -> float:
        """Device time (s) of the instant the last estimate describes."""
        return self.sample_time_s - self.spec.delay_s


@dataclass(frozen=True)
class RuntimeConfig:
    """How edge-run talks to the device and how long it runs.

    ``port``/``out_port``: device paths or pyserial URLs (estimates go to
    ``out_port`` when given, else back on ``port``); ``baud`` in bit/s;
    ``duration_s`` None runs until stopped; ``read_timeout_s`` bounds how long the
    loop waits for input before it checks for stop requests;
    ``stale_after_us`` marks an answer STALE when it left later than this after
    its sample arrived; ``skip_after_us``: when one read brings several samples, the
    older ones are answered only while less than this has passed since the read (0:
    answer the newest only); ``output_backoff_s``: after the device stopped reading
    (a write timed out) estimates are not written for this long (counted).
    """

    port: str
    baud: int = 1_000_000
    out_port: str | None = None
    log_path: Path | None = None
    duration_s: float | None = None
    json_status: bool = False
    read_timeout_s: float = 0.05
    write_timeout_s: float = 0.002
    reopen_period_s: float = 0.2
    heartbeat_period_s: float = P.DEFAULT_HEARTBEAT_PERIOD_MS / 1000.0
    stale_after_us: int = P.DEFAULT_MAX_ESTIMATE_AGE_MS * 1000
    output_backoff_s: float = 0.1
    skip_after_us: int = 1000
    log_queue_size: int = 65536
    status_period_s: float = 1.0


class Runtime:
    """Runs the loop on a link until ``stop()``, the duration, or a signal.

    ``open_link(url, baud, timeout)`` is injected (firmware_bridge.link.open_link
    in production) so the loop owns no knowledge of how links are opened.
    """

    def __init__(
        self,
        config: RuntimeConfig,
        pipeline: EstimatePipeline,
        open_link: Any,
        muscles: tuple[str, ...],
        coordinates: tuple[str, ...],
        log: TextIO | None = None,
    ) -> None:
        self.config = config
        self.pipeline = pipeline
        self.open_link = open_link
        self.muscles = muscles
        self.coordinates = coordinates
        self.log = log if log is not None else sys.stderr
        self.counters = RunCounters()
        self.latency = LatencyRecorder()
        self._stop = threading.Event()
        self._finishing = threading.Event()
        self._link: Any = None
        self._out: Any = None
        self._out_fd: int | None = None
        self._in_fd: int | None = None
        self._decoder = StreamDecoder()
        self._decoder_errors: dict[str, int] = {}
        self._estimate_seq = 0
        self._heartbeat_seq = 0
        self._hello_seq = 0
        self._last_sample_at: float | None = None
        self._device_silent = False
        self._device_described = ""
        self._pending_skipped = 0
        self._next_heartbeat = 0.0
        self._output_blocked_until = 0.0
        self._status_bits = MODEL_NOT_READY
        self._n_muscles = len(muscles)
        self.estimate_log: EstimateLog | None = None
        self.started = time.monotonic()

    def stop(self) -> None:
        """Ask the loop to finish (safe from signal handlers and other threads)."""
        self._stop.set()

    def finish(self) -> None:
        """The device has ended its stream in order (its last sample is written): answer
        what has arrived, then stop, with no device-silent report for the quiet after it."""
        self._finishing.set()

    # ---- links -------------------------------------------------------------------

    def _say(self, message: str) -> None:
        print(message, file=self.log, flush=True)

    def _connect(self) -> bool:
        """Open the link(s); False (and retried later) while the port is absent."""
        c = self.config
        try:
            self._link = self.open_link(c.port, c.baud, c.read_timeout_s)
            self._out = self._link
            if c.out_port:
                self._out = self.open_link(c.out_port, c.baud, c.read_timeout_s)
            self._out.write_timeout = c.write_timeout_s
            self._out_fd = _nonblocking_fd(self._out)
            self._in_fd = _nonblocking_fd(self._link)
        except LINK_ERRORS:  # the port is absent (yet)
            self._close_links()
            return False
        self.pipeline.restart_history()
        self._decoder = StreamDecoder()
        self._last_sample_at = None
        self._device_silent = False
        hello = self._hello(reply_requested=1)
        self._send(hello)
        if self._out is not self._link:
            with contextlib.suppress(*LINK_ERRORS):  # the sensor side may not listen
                self._link.write(encode(hello))
        return True

    def _close_links(self) -> None:
        for link in (self._link, self._out):
            if link is not None:
                with contextlib.suppress(*LINK_ERRORS):  # a vanished device is gone either way
                    link.close()
        self._link = self._out = None
        self._out_fd = self._in_fd = None

    def _disconnected(self, reason: str) -> None:
        for kind, n in self._decoder.errors.items():
            self._decoder_errors[kind] = self._decoder_errors.get(kind, 0) + n
        self.counters.errors["disconnect"] += 1
        self._say(f"link lost ({reason}); reopening {self.config.port} when it returns")
        self._close_links()

    def _reconnect(self) -> None:
        while not self._should_stop():
            if self._connect():
                self.counters.reconnects += 1
                self._say(f"link reopened: {self.config.port}")
                return
            self._stop.wait(self.config.reopen_period_s)

    def _hello(self, reply_requested: int) -> Hello:
        spec = self.pipeline.spec
        self._hello_seq += 1
        return Hello(
            seq=self._hello_seq,
            timestamp_us=self._host_us(),
            role=P.ROLE_HOST,
            sample_rate_hz=spec.rate_hz,
            joint_names=self.coordinates,
            muscle_names=self.muscles,
            heartbeat_period_ms=round(self.config.heartbeat_period_s * 1000),
            reply_requested=reply_requested,
        )

    def _host_us(self) -> int:
        return time.perf_counter_ns() // 1000 % (1 << 32)

    def _send(self, message: Any) -> bool:
        """Write one frame to the output link; never waits for a device that stops reading.

        A POSIX port is written with one non-blocking ``os.write``: a full output
        buffer drops the frame (counted ``output_dropped``), a partial write leaves a
        cut frame the device's decoder skips (counted ``output_partial``). Links
        without a file descriptor (pyserial URLs) are written through pyserial with
        its write timeout.
        """
        if self._out is None or time.monotonic() < self._output_blocked_until:
            self.counters.errors["output_dropped"] += 1
            return False
        frame = encode(message)
        if self._out_fd is None:
            try:
                self._out.write(frame)
            except SerialTimeoutException:  # the device stopped reading
                self.counters.errors["output_timeout"] += 1
                self._output_blocked_until = time.monotonic() + self.config.output_backoff_s
                return False
            return True
        try:
            written = os.write(self._out_fd, frame)
        except BlockingIOError:
            self.counters.errors["output_dropped"] += 1
            return False
        if written < len(frame):
            self.counters.errors["output_partial"] += 1
            return False
        return True

    # ---- the loop ----------------------------------------------------------------

    def _should_stop(self) -> bool:
        d = self.config.duration_s
        return (
            self._stop.is_set()
            or (self._finishing.is_set() and self._link is None)  # nothing left to answer
            or (d is not None and time.monotonic() - self.started >= d)
        )

    def run(self) -> dict:
        """Run until stopped; returns the run summary."""
        c = self.config
        if c.log_path is not None:
            self.estimate_log = EstimateLog(
                c.log_path, self.muscles, self.coordinates, c.log_queue_size
            )
        reporter = StatusReporter(
            self.counters, self.latency, json_lines=c.json_status, period_s=c.status_period_s
        )
        self.started = time.monotonic()
        try:
            if not self._connect():
                self._say(f"waiting for {c.port} to appear")
                self._reconnect()
            reporter.start()
            with SwitchInterval():
                self._loop()
        finally:
            reporter.stop()
            self._close_links()
            if self.estimate_log is not None:
                self.estimate_log.close()
        return self.summary()

    def summary(self) -> dict:
        c = self.counters
        if self.estimate_log is not None:
            c.log_overflow = self.estimate_log.overflowed
            if self.estimate_log.error:
                c.errors["log"] += 1
        errors = dict(self._decoder_errors)
        for kind, n in self._decoder.errors.items():
            errors[kind] = errors.get(kind, 0) + n
        for kind, n in self.pipeline.errors.items():
            errors[kind] = errors.get(kind, 0) + n
        for kind, n in c.errors.items():
            errors[kind] = errors.get(kind, 0) + n
        merged = RunCounters(
            c.samples_in, c.estimates_out, c.skipped, c.log_overflow, c.reconnects,
        )
        merged.errors.update({k: v for k, v in errors.items() if v})
        merged.flags.update(c.flags)
        return run_summary(merged, self.latency, time.monotonic() - self.started)

    def _loop(self) -> None:
        while not self._should_stop():
            if self._link is None:
                self._reconnect()
                continue
            # Noted before the read: an empty read then shows the device's last sample,
            # written before finish() was called, has been answered.
            finishing = self._finishing.is_set()
            try:
                data = self._read()
            except LINK_ERRORS as exc:  # the device went away
                self._disconnected(str(exc))
                continue
            received_ns = time.perf_counter_ns()
            if not data and finishing:
                return  # the device's stream has ended and all of it is answered
            if data:
                messages = self._decoder.feed(data)
                samples = [m for m in messages if type(m) is JointSample]
                if len(samples) != len(messages):
                    self._note_device_messages(messages)
                if samples:
                    self._last_sample_at = time.monotonic()
                    if self._device_silent:
                        self._device_silent = False
                        self._say("device samples resumed")
                    try:
                        self._answer(samples, received_ns)
                    except LINK_ERRORS as exc:  # a write that failed for good: link lost
                        self._disconnected(str(exc))
                        continue
            now = time.monotonic()
            silent_after = DEVICE_SILENT_HEARTBEATS * self.config.heartbeat_period_s
            if (
                not self._device_silent
                and not self._finishing.is_set()
                and self._last_sample_at is not None
                and now - self._last_sample_at > silent_after
            ):
                self._device_silent = True
                self.counters.errors["device_silent"] += 1
                self._say(f"no samples from the device for {silent_after:g} s: it is gone or "
                          f"stopped; estimating resumes with its next sample")
            if now >= self._next_heartbeat and self._link is not None:
                self._next_heartbeat = now + self.config.heartbeat_period_s
                self._heartbeat_seq += 1
                try:
                    self._send(
                        Heartbeat(
                            self._heartbeat_seq, self._host_us(), P.ROLE_HOST,
                            round(self.config.heartbeat_period_s * 1000),
                            self._status_bits & 0xFFFF,
                        )
                    )
                except LINK_ERRORS as exc:  # the device went away while we wrote
                    self._disconnected(str(exc))

    def _read(self) -> bytes:
        """Whatever arrived, waiting at most ``read_timeout_s`` for the first byte.

        A POSIX port is read with one select and one os.read (no pyserial layers);
        other links through pyserial. An end of file on a ready port is a vanished
        device, as pyserial reports it.
        """
        fd = self._in_fd
        if fd is None:
            link = self._link
            waiting = link.in_waiting
            data = link.read(waiting if waiting else 1)
            if data and not waiting and link.in_waiting:
                data += link.read(link.in_waiting)
            return data
        ready, _, _ = select.select((fd,), (), (), self.config.read_timeout_s)
        if not ready:
            return b""
        try:
            data = os.read(fd, 65536)
        except (BlockingIOError, InterruptedError):
            return b""
        if not data:
            raise SerialException("the port reports data but returns none (device disconnected?)")
        return data

    def _note_device_messages(self, messages: list[Any]) -> None:
        """Check the device's Hello against the sensor mapping (heartbeats need nothing)."""
        for m in messages:
            if type(m) is not Hello or m.role != P.ROLE_DEVICE:
                continue
            if m.reply_requested:
                self._send(self._hello(reply_requested=0))
            n_expected = self.pipeline.mapper.n_channels
            names = ", ".join(m.joint_names) or "unnamed"
            encoding = "counts" if m.encoding == P.ENCODING_COUNTS else "radians"
            described = (f"device: {len(m.joint_names)} channels ({names}) in {encoding} at "
                         f"{m.sample_rate_hz:g} Hz")
            if described == self._device_described:
                continue
            self._device_described = described
            self._say(described)
            if math.isfinite(m.sample_rate_hz) and 0 < m.sample_rate_hz <= 1e6:
                self.pipeline.ensure_device_rate(m.sample_rate_hz)
            if m.joint_names and len(m.joint_names) != n_expected:
                self.counters.errors["hello_mismatch"] += 1
                self._say(f"warning: the device sends {len(m.joint_names)} channels but the "
                          f"sensor mapping expects {n_expected}: pass --sensors with a "
                          f"sensors.json for this device; its samples are flagged INPUT_INVALID")
            if m.encoding == P.ENCODING_COUNTS and self.pipeline.mapper.gain == (1.0, 1.0, 1.0):
                self.counters.errors["hello_mismatch"] += 1
                self._say("warning: the device sends raw counts but the sensor mapping has a "
                          "scale of 1 rad per count: pass --sensors with the counts' scale "
                          "(2π / counts per revolution)")

    def _answer(self, samples: list[JointSample], received_ns: int) -> None:
        """Answer the samples of one read: older ones while still fresh, the newest always."""
        pipeline = self.pipeline
        counters = self.counters
        n = len(samples)
        counters.samples_in += n
        budget_ns = self.config.skip_after_us * 1000
        for older in samples[:-1]:
            status = pipeline.accept(older)
            if time.perf_counter_ns() - received_ns < budget_ns:
                self._emit(older, pipeline.estimate(status), received_ns)
            else:
                counters.skipped += 1
                self._pending_skipped += 1
        self._emit(samples[-1], pipeline.estimate(pipeline.accept(samples[-1])), received_ns)

    def _emit(self, sample: JointSample, status: int, received_ns: int) -> None:
        """Send, count and log the estimate the pipeline holds for ``sample``."""
        pipeline = self.pipeline
        counters = self.counters
        latency_us = (time.perf_counter_ns() - received_ns) // 1000
        if latency_us > self.config.stale_after_us:
            status |= STALE
        skipped = self._pending_skipped
        self._pending_skipped = 0
        self._estimate_seq += 1
        frame = Estimate(
            seq=self._estimate_seq,
            timestamp_us=self._host_us(),
            sample_seq=sample.seq,
            sample_timestamp_us=sample.timestamp_us,
            activations=tuple(pipeline.activations.tolist()),
            forces=tuple(pipeline.forces.tolist()),
            torques=tuple(pipeline.torques.tolist()),
            status=status,
            skipped=min(skipped, MAX_WIRE_SKIPPED),
            latency_us=min(latency_us, 0xFFFFFFFF),
        )
        self._send(frame)
        latency_us = (time.perf_counter_ns() - received_ns) // 1000
        counters.estimates_out += 1
        self.latency.record(latency_us)
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
            row[6 : 6 + m] = pipeline.activations
            row[6 + m : 6 + 2 * m] = pipeline.forces
            row[6 + 2 * m :] = pipeline.torques
            self.estimate_log.submit(row)
