"""A device that speaks the protocol as a microcontroller would, without hardware.

`DeviceSimulator` plays right-leg joint angles (the built-in normative gait or an
OpenSim .mot file, looped) as `JointSample` frames at a fixed rate on a deadline
schedule, for a set duration or until stopped, with optional encoder
quantisation, noise, dropped samples, timestamp jitter, NaN and garbage
injection; sends Hello and Heartbeat; reads `Estimate` frames back and reports
round-trip latency percentiles, lost and late estimates. Samples are made as
they are played, a short chunk at a time, so a run has no preset end; the
figures are counted as it goes, and the report also carries the latest sent
samples and received estimates (all of them for short runs), so a test can
compare them with offline inference.

Run it in a thread (`DeviceSimulator.start/join`), in a separate process
(`SimulatorProcess`, so it does not share the runtime's GIL) or from the shell
(`bridge-sim`, which creates a pseudo-terminal and prints its path).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from firmware_bridge import protocol as P
from firmware_bridge.codec import Estimate, Heartbeat, Hello, JointSample, StreamDecoder, encode
from firmware_bridge.link import DEFAULT_BAUD, LinkError, PseudoTerminal, open_link
from firmware_bridge.motion_file import MotionFileError, read_joint_angles
from firmware_bridge.normative_gait import JOINT_NAMES, load_normative_gait
from firmware_bridge.progress import progress_bar

_WRAP_US = 1 << 32
_CHUNK_S = 0.02
"""Samples are made this many seconds of play at a time, in the slack before a deadline."""
_PENDING_S = 10.0
"""An estimate arriving more than this after its sample was sent counts as unmatched."""


class SimulatorConfigError(ValueError):
    """A simulator setting out of range; the message names it and what is allowed."""


@dataclass(frozen=True)
class SimulatorConfig:
    """What the simulated device plays and how it misbehaves.

    rate_hz: samples per second. duration_s: how long to play (None: until
    stopped). motion_file: an OpenSim .mot/.sto with hip_flexion_r, knee_angle_r,
    ankle_angle_r (played in a loop), or None for the built-in normative gait with
    period gait_period_s (None: the real cycle's 1.235 s). encoding:
    P.ENCODING_RADIANS (float32 rad) or P.ENCODING_COUNTS (int32 counts =
    round(angle / (2π / counts_per_rev)); sensors.json then needs scale 2π /
    counts_per_rev). counts_per_rev > 0 also quantises radians. noise_rad:
    Gaussian noise std. drop_probability: a sample is skipped (its seq still
    advances, as a lost UART frame would look). jitter_us: std of Gaussian error
    on the timestamp field. nan_probability: one channel is sent as NaN with its
    valid bit still set (counts: sent as 0 with the bit cleared).
    garbage_probability: random bytes (1-32) are written before a sample.
    timestamp_start_us: the device clock (µs) when the simulator starts; samples
    carry it plus the time since (set near 2^32 to test wrapping).
    wait_for_host_s: before streaming, wait up to this long for a Hello or
    Heartbeat from the host (0: stream at once). late_after_ms: an estimate
    received more than this after its sample was sent counts as late. drain_s:
    how long to keep reading after the last sample. keep_records: how many of the
    latest sent samples and received estimates the report carries (0: none); the
    report's figures count the whole run either way.
    """

    rate_hz: float = 100.0
    duration_s: float | None = 10.0
    motion_file: str | None = None
    gait_period_s: float | None = None
    encoding: int = P.ENCODING_RADIANS
    counts_per_rev: int = 0
    noise_rad: float = 0.0
    drop_probability: float = 0.0
    jitter_us: float = 0.0
    nan_probability: float = 0.0
    garbage_probability: float = 0.0
    timestamp_start_us: int = 0
    heartbeat_period_ms: int = P.DEFAULT_HEARTBEAT_PERIOD_MS
    wait_for_host_s: float = 0.0
    late_after_ms: float = 50.0
    drain_s: float = 0.5
    keep_records: int = 100_000
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            (1.0 <= self.rate_hz <= 5000.0, f"rate_hz must lie in 1..5000 Hz, got {self.rate_hz}"),
            (
                self.duration_s is None or self.duration_s > 0,
                f"duration_s must be positive (or None: until stopped), got {self.duration_s}",
            ),
            (
                self.gait_period_s is None or self.gait_period_s > 0,
                f"gait_period_s must be positive, got {self.gait_period_s}",
            ),
            (
                self.encoding in (P.ENCODING_RADIANS, P.ENCODING_COUNTS),
                f"encoding must be {P.ENCODING_RADIANS} (radians) or {P.ENCODING_COUNTS} (counts)",
            ),
            (self.counts_per_rev >= 0, "counts_per_rev must be >= 0 (0: no quantisation)"),
            (
                self.encoding != P.ENCODING_COUNTS or self.counts_per_rev > 0,
                "sending counts needs counts_per_rev > 0",
            ),
            (self.noise_rad >= 0 and self.jitter_us >= 0, "noise and jitter must be >= 0"),
            (
                all(
                    0 <= p <= 1
                    for p in (self.drop_probability, self.nan_probability, self.garbage_probability)
                ),
                "probabilities must lie in 0..1",
            ),
            (0 <= self.timestamp_start_us < _WRAP_US, "timestamp_start_us must fit 32 bits"),
            (0 < self.heartbeat_period_ms < 1 << 16, "heartbeat_period_ms must lie in 1..65535"),
            (
                self.wait_for_host_s >= 0 and self.drain_s >= 0 and self.late_after_ms > 0,
                "wait_for_host_s and drain_s must be >= 0, late_after_ms > 0",
            ),
            (self.keep_records >= 0, f"keep_records must be >= 0, got {self.keep_records}"),
        ]
        for ok, message in checks:
            if not ok:
                raise SimulatorConfigError(message)

    @property
    def n_samples(self) -> int | None:
        """Samples in the run; None when it plays until stopped."""
        if self.duration_s is None:
            return None
        return max(1, round(self.duration_s * self.rate_hz))


@dataclass(frozen=True)
class SentSample:
    """One JointSample exactly as it went on the wire, and when (perf_counter_ns)."""

    seq: int
    timestamp_us: int
    values: tuple
    valid_mask: int
    encoding: int
    sent_ns: int


@dataclass(frozen=True)
class ReceivedEstimate:
    estimate: Estimate
    received_ns: int


@dataclass(frozen=True)
class SimulatorReport:
    """What happened on the link. Latencies are round trips: sample written to estimate read.

    samples_scheduled: the samples of a run with a duration; for a run until
    stopped, those whose time came (sent or dropped). `sent` and `received` hold
    the latest config.keep_records records; the figures count the whole run.
    """

    samples_scheduled: int
    samples_sent: int
    samples_dropped: int
    garbage_bursts: int
    bytes_not_written: int
    overruns: int
    estimates_received: int
    answered: int
    skipped_reported: int
    lost: int
    late: int
    unmatched: int
    latency_ms_p50: float
    latency_ms_p99: float
    latency_ms_p999: float
    latency_ms_max: float
    heartbeats_received: int
    host_hello: Hello | None
    decoder_errors: dict[str, int]
    elapsed_s: float
    sent: tuple[SentSample, ...] = field(repr=False)
    received: tuple[ReceivedEstimate, ...] = field(repr=False)

    def summary(self) -> str:
        errors = {k: v for k, v in self.decoder_errors.items() if v}
        return (
            f"sent {self.samples_sent}/{self.samples_scheduled} samples "
            f"({self.samples_dropped} dropped on purpose, {self.overruns} overruns, "
            f"{self.bytes_not_written} bytes the link refused) in {self.elapsed_s:.2f} s; "
            f"estimates {self.estimates_received} (answered {self.answered}, host skipped "
            f"{self.skipped_reported}, lost {self.lost}, late {self.late}, unmatched "
            f"{self.unmatched}); round trip ms p50 {self.latency_ms_p50:.3f} "
            f"p99 {self.latency_ms_p99:.3f} p99.9 {self.latency_ms_p999:.3f} "
            f"max {self.latency_ms_max:.3f}; host heartbeats {self.heartbeats_received}; "
            f"decoder errors {errors or 'none'}"
        )

    def to_json(self) -> dict:
        """The figures without the per-sample records."""
        out = asdict(self)
        del out["sent"], out["received"]
        return out


class DeviceSimulator:
    """The device side of a link (`PseudoTerminal`, a pyserial port: anything with
    `read(size)` returning after its timeout and `write(data)`).

    progress(n) is called as samples are played; on_streamed() once the last
    sample has been written (before the drain), so a host can tell the orderly
    end of the stream from a device gone silent.
    """

    def __init__(
        self,
        config: SimulatorConfig,
        link,
        progress: Callable[[int], None] | None = None,
        on_streamed: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.link = link
        self.progress = progress
        self.on_streamed = on_streamed
        self._stop = threading.Event()
        self._host_heard = threading.Event()
        self._thread: threading.Thread | None = None
        self._report: SimulatorReport | None = None
        self._error: BaseException | None = None
        self._source = _AngleSource(config)

    # -- life cycle -----------------------------------------------------------------------
    def run(self) -> SimulatorReport:
        """Play the whole configuration (or until `stop`), blocking; returns the report."""
        return self._run()

    def start(self) -> None:
        """Play in a background thread; `join` returns the report."""
        self._thread = threading.Thread(target=self._run_in_thread, name="bridge-sim", daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> SimulatorReport:
        if self._thread is None:
            raise RuntimeError("join() before start()")
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the simulator is still running after {timeout} s")
        if self._error is not None:
            raise self._error
        assert self._report is not None
        return self._report

    def stop(self) -> None:
        """Stop sending early; the report covers what was sent."""
        self._stop.set()

    def _run_in_thread(self) -> None:
        try:
            self._report = self._run()
        except BaseException as exc:
            self._error = exc

    # -- the device -----------------------------------------------------------------------
    def _run(self) -> SimulatorReport:
        session = _Session(self.config, self.link, self._stop, self._host_heard)
        reader = threading.Thread(target=session.read_loop, name="bridge-sim-reader", daemon=True)
        reader.start()
        try:
            session.send_hello(reply_requested=1)
            session.wait_for_host()
            elapsed_s = session.stream(_planned_samples(self.config, self._source), self.progress)
            if self.on_streamed is not None:
                self.on_streamed()
            session.drain()
        finally:
            session.reading.clear()
            reader.join(timeout=2.0)
        if session.link_error is not None:
            raise LinkError(f"the link failed while simulating: {session.link_error}")
        return session.report(elapsed_s)


class _LatencyHistogram:
    """Round trips in logarithmic bins 0.1 % wide from 1 µs to 1000 s: percentiles within
    0.05 % over a run of any length, in fixed memory (the maximum is kept exactly)."""

    LOW_NS = 1_000
    RATIO = 1.001

    def __init__(self) -> None:
        self._log_ratio = math.log(self.RATIO)
        self.counts = np.zeros(
            math.ceil(math.log(1e12 / self.LOW_NS) / self._log_ratio) + 1, dtype=np.int64
        )
        self.max_ns = 0

    def record(self, latency_ns: int) -> None:
        index = int(math.log(max(latency_ns, self.LOW_NS) / self.LOW_NS) / self._log_ratio)
        self.counts[min(index, self.counts.size - 1)] += 1
        self.max_ns = max(self.max_ns, latency_ns)

    def percentile_ms(self, q: float) -> float:
        """The q-th percentile (ms): the middle of the bin where the cumulative count reaches it."""
        total = int(self.counts.sum())
        if total == 0:
            return math.nan
        rank = max(1, math.ceil(q / 100 * total))
        index = int(np.searchsorted(np.cumsum(self.counts), rank))
        middle_ns = self.LOW_NS * self.RATIO ** (index + 0.5)
        return min(middle_ns, self.max_ns) / 1e6

    def max_ms(self) -> float:
        return self.max_ns / 1e6 if self.counts.any() else math.nan


class _Session:
    """One run of the device: its clock, counters and records, the sending loop and the reader."""

    def __init__(
        self, config: SimulatorConfig, link, stop: threading.Event, host_heard: threading.Event
    ) -> None:
        self.config = config
        self.link = link
        self.stop = stop
        self.host_heard = host_heard
        self.reading = threading.Event()
        self.reading.set()
        self.decoder = StreamDecoder()
        self.write_lock = threading.Lock()
        self.t0_ns = time.perf_counter_ns()  # the device clock's origin
        self.hello_seq = 0
        self.heartbeat_seq = 0
        self.sent: deque[SentSample] = deque(maxlen=config.keep_records)
        self.received: deque[ReceivedEstimate] = deque(maxlen=config.keep_records)
        # Samples sent and not yet answered, oldest first: seq -> (timestamp_us, sent_ns).
        self.pending: dict[int, tuple[int, int]] = {}
        self.pending_limit = max(1, round(config.rate_hz * _PENDING_S))
        self.pending_lock = threading.Lock()
        self.latency = _LatencyHistogram()
        self.host_hello: Hello | None = None
        self.heartbeats_received = 0
        self.bytes_not_written = 0
        self.overruns = 0
        self.played = 0
        self.samples_sent = 0
        self.dropped = 0
        self.garbage_bursts = 0
        self.estimates_received = 0
        self.answered = 0
        self.skipped_reported = 0
        self.late = 0
        self.unmatched = 0
        self.last_seq_sent: int | None = None
        self.last_seq_answered: int | None = None
        self.link_error: str | None = None

    def device_clock_us(self, at_ns: int | None = None) -> int:
        """micros() of the simulated device at perf_counter_ns `at_ns` (default now)."""
        at_ns = time.perf_counter_ns() if at_ns is None else at_ns
        return (self.config.timestamp_start_us + (at_ns - self.t0_ns) // 1000) % _WRAP_US

    def send(self, data: bytes) -> None:
        with self.write_lock:
            written = self.link.write(data)
        if written is not None and written < len(data):
            self.bytes_not_written += len(data) - written

    def send_hello(self, reply_requested: int) -> None:
        cfg = self.config
        self.send(
            encode(
                Hello(
                    seq=self.hello_seq,
                    timestamp_us=self.device_clock_us(),
                    role=P.ROLE_DEVICE,
                    sample_rate_hz=cfg.rate_hz,
                    joint_names=JOINT_NAMES,
                    encoding=cfg.encoding,
                    heartbeat_period_ms=cfg.heartbeat_period_ms,
                    reply_requested=reply_requested,
                )
            )
        )
        self.hello_seq += 1

    def send_heartbeat(self) -> None:
        self.send(
            encode(
                Heartbeat(
                    seq=self.heartbeat_seq,
                    timestamp_us=self.device_clock_us(),
                    role=P.ROLE_DEVICE,
                    heartbeat_period_ms=self.config.heartbeat_period_ms,
                )
            )
        )
        self.heartbeat_seq += 1

    def read_loop(self) -> None:
        while self.reading.is_set():
            try:
                data = self.link.read(4096)
            except OSError as exc:  # the port went away: stop and say so
                self.link_error = str(exc)
                self.stop.set()
                return
            if data:
                self._on_messages(self.decoder.feed(data), time.perf_counter_ns())

    def _on_messages(self, messages, received_ns: int) -> None:
        for message in messages:
            if isinstance(message, Estimate):
                self._on_estimate(message, received_ns)
            elif isinstance(message, Heartbeat) and message.role == P.ROLE_HOST:
                self.heartbeats_received += 1
            elif isinstance(message, Hello) and message.role == P.ROLE_HOST:
                if message.reply_requested:
                    self.send_hello(reply_requested=0)
                self.host_hello = message
            else:
                continue
            self.host_heard.set()

    def _on_estimate(self, estimate: Estimate, received_ns: int) -> None:
        """Match an estimate to the sample it answers and count its round trip."""
        self.received.append(ReceivedEstimate(estimate, received_ns))
        self.estimates_received += 1
        self.skipped_reported += estimate.skipped
        self.last_seq_answered = estimate.sample_seq
        with self.pending_lock:
            sample = self.pending.get(estimate.sample_seq)
            if sample is None or sample[0] != estimate.sample_timestamp_us:
                self.unmatched += 1
                return
            del self.pending[estimate.sample_seq]
        self.answered += 1
        latency_ns = received_ns - sample[1]
        self.latency.record(latency_ns)
        if latency_ns > self.config.late_after_ms * 1e6:
            self.late += 1

    def wait_for_host(self) -> None:
        """Until the host speaks (or wait_for_host_s passes): heartbeats, and a Hello a second
        (a host that opened the port after our first Hello may have flushed it)."""
        deadline = time.perf_counter() + self.config.wait_for_host_s
        period_s = self.config.heartbeat_period_ms / 1000
        next_hello = time.perf_counter() + 1.0
        while not self.stop.is_set() and time.perf_counter() < deadline:
            if self.host_heard.wait(min(period_s, max(0.0, deadline - time.perf_counter()))):
                return
            self.send_heartbeat()
            if time.perf_counter() >= next_hello:
                self.send_hello(reply_requested=1)
                next_hello += 1.0

    def stream(
        self, planned: Iterator[_PlannedSample], progress: Callable[[int], None] | None
    ) -> float:
        """Send the planned samples on a deadline schedule; returns seconds taken.

        Sample k is due exactly k / rate_hz after the start (integer nanoseconds, no
        drift however long the run); the next chunk of samples is made in the slack
        before its first deadline.
        """
        cfg = self.config
        period = Fraction(10**9) / Fraction(cfg.rate_hz)  # ns, exact
        period_ns = round(period)
        heartbeat_ns = cfg.heartbeat_period_ms * 1_000_000
        start_ns = time.perf_counter_ns()
        next_heartbeat_ns = start_ns
        progress_every = max(1, round(cfg.rate_hz / 10))
        for k, planned_sample in enumerate(planned):
            if self.stop.is_set():
                break
            deadline_ns = start_ns + k * period.numerator // period.denominator
            now_ns = time.perf_counter_ns()
            if deadline_ns > now_ns:
                time.sleep((deadline_ns - now_ns) / 1e9)
            elif now_ns - deadline_ns > period_ns:
                self.overruns += 1
            if time.perf_counter_ns() >= next_heartbeat_ns:
                self.send_heartbeat()
                next_heartbeat_ns += heartbeat_ns
            self._play(k % _WRAP_US, deadline_ns, planned_sample)
            if progress is not None and (k + 1) % progress_every == 0:
                progress(progress_every)
        return (time.perf_counter_ns() - start_ns) / 1e9

    def _play(self, seq: int, deadline_ns: int, planned: _PlannedSample) -> None:
        """Send one planned sample (or drop it), with its garbage burst first."""
        self.played += 1
        if planned.garbage:
            self.garbage_bursts += 1
            self.send(planned.garbage)
        if planned.dropped:
            self.dropped += 1
            return
        # The device read its sensors at the deadline; its clock then, plus jitter.
        timestamp_us = (self.device_clock_us(deadline_ns) + planned.jitter_us) % _WRAP_US
        data = encode(
            JointSample(
                seq=seq,
                timestamp_us=timestamp_us,
                values=planned.values,
                valid_mask=planned.valid_mask,
                encoding=self.config.encoding,
            )
        )
        sent_ns = time.perf_counter_ns()
        with self.pending_lock:  # before writing: the answer may come back at once
            self.pending[seq] = (timestamp_us, sent_ns)
            if len(self.pending) > self.pending_limit:  # never answered: forget the oldest
                del self.pending[next(iter(self.pending))]
        self.send(data)
        self.samples_sent += 1
        self.last_seq_sent = seq
        self.sent.append(
            SentSample(
                seq, timestamp_us, planned.values, planned.valid_mask, self.config.encoding, sent_ns
            )
        )

    def drain(self) -> None:
        """Wait up to drain_s for the estimate of the last sample sent."""
        until = time.perf_counter() + self.config.drain_s
        last_seq = self.last_seq_sent
        while time.perf_counter() < until:
            if last_seq is not None and self.last_seq_answered == last_seq:
                return
            time.sleep(0.005)

    def report(self, elapsed_s: float) -> SimulatorReport:
        cfg = self.config
        return SimulatorReport(
            samples_scheduled=cfg.n_samples if cfg.n_samples is not None else self.played,
            samples_sent=self.samples_sent,
            samples_dropped=self.dropped,
            garbage_bursts=self.garbage_bursts,
            bytes_not_written=self.bytes_not_written,
            overruns=self.overruns,
            estimates_received=self.estimates_received,
            answered=self.answered,
            skipped_reported=self.skipped_reported,
            lost=max(0, self.samples_sent - self.answered - self.skipped_reported),
            late=self.late,
            unmatched=self.unmatched,
            latency_ms_p50=self.latency.percentile_ms(50),
            latency_ms_p99=self.latency.percentile_ms(99),
            latency_ms_p999=self.latency.percentile_ms(99.9),
            latency_ms_max=self.latency.max_ms(),
            heartbeats_received=self.heartbeats_received,
            host_hello=self.host_hello,
            decoder_errors=dict(self.decoder.errors),
            elapsed_s=elapsed_s,
            sent=tuple(self.sent),
            received=tuple(self.received),
        )


class _PlannedSample(NamedTuple):
    """One sample with everything random about it decided, so the loop only encodes and sends."""

    values: tuple
    valid_mask: int
    jitter_us: int
    dropped: bool
    garbage: bytes


class _AngleSource:
    """The true angles the device plays, before any corruption: the normative gait, or a
    motion file played in a loop (raises MotionFileError for a file it cannot play)."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.rate_hz = config.rate_hz
        self.gait_period_s = config.gait_period_s
        self._gait = load_normative_gait() if config.motion_file is None else None
        if self._gait is None:
            self._file_time, self._file_angles = read_joint_angles(config.motion_file, JOINT_NAMES)

    def angles(self, start: int, count: int) -> np.ndarray:
        """Angles (count, 3) rad of samples start .. start + count - 1 (sample k at k / rate_hz)."""
        t = np.arange(start, start + count) / self.rate_hz
        if self._gait is not None:
            return self._gait.angles_at_time(t, self.gait_period_s)
        file_time, angles = self._file_time, self._file_angles
        local = file_time[0] + np.mod(t, file_time[-1] - file_time[0])
        return np.stack([np.interp(local, file_time, angles[:, j]) for j in range(3)], axis=1)


def source_angles(config: SimulatorConfig) -> np.ndarray:
    """The true angles (n_samples, 3) rad at the sample instants of a run with a duration."""
    if config.n_samples is None:
        raise ValueError("source_angles needs a run with a duration (duration_s is None)")
    return _AngleSource(config).angles(0, config.n_samples)


def _planned_samples(cfg: SimulatorConfig, source: _AngleSource) -> Iterator[_PlannedSample]:
    """The run's samples, made _CHUNK_S of play at a time from one seeded generator;
    endless when the run has no duration."""
    rng = np.random.default_rng(cfg.seed)
    chunk = max(1, round(cfg.rate_hz * _CHUNK_S))
    start = 0
    while cfg.n_samples is None or start < cfg.n_samples:
        count = chunk if cfg.n_samples is None else min(chunk, cfg.n_samples - start)
        yield from _plan_chunk(cfg, rng, source.angles(start, count))
        start += count


def _plan_chunk(
    cfg: SimulatorConfig, rng: np.random.Generator, q: np.ndarray
) -> list[_PlannedSample]:
    """Corrupt true angles q (n, 3) rad as configured and decide every sample's faults."""
    n = q.shape[0]
    if cfg.noise_rad > 0:
        q = q + rng.normal(0.0, cfg.noise_rad, q.shape)
    full_mask = (1 << q.shape[1]) - 1
    masks = np.full(n, full_mask, dtype=np.int64)
    nan_rows = rng.random(n) < cfg.nan_probability
    nan_channels = rng.integers(0, q.shape[1], n)
    if cfg.counts_per_rev > 0:
        step = 2 * np.pi / cfg.counts_per_rev
        counts = np.round(q / step).astype(np.int64)
        q = counts * step
    if cfg.encoding == P.ENCODING_COUNTS:
        counts[nan_rows, nan_channels[nan_rows]] = 0
        masks[nan_rows] &= ~(1 << nan_channels[nan_rows])
        values = [tuple(int(v) for v in row) for row in counts]
    else:
        q = q.astype(np.float32)
        q[nan_rows, nan_channels[nan_rows]] = np.nan
        values = [tuple(float(v) for v in row) for row in q]
    jitter = np.round(rng.normal(0.0, cfg.jitter_us, n)) if cfg.jitter_us > 0 else np.zeros(n)
    dropped = rng.random(n) < cfg.drop_probability
    garbage_rows = rng.random(n) < cfg.garbage_probability
    garbage = [
        rng.integers(0, 256, rng.integers(1, 33)).astype(np.uint8).tobytes() if g else b""
        for g in garbage_rows
    ]
    return [
        _PlannedSample(v, int(m), int(j), bool(d), g)
        for v, m, j, d, g in zip(values, masks, jitter, dropped, garbage)
    ]


# -- a separate process --------------------------------------------------------------------
def _process_main(config: SimulatorConfig, url: str | None, baud: int, connection) -> None:
    # Ctrl-C reaches the whole process group: the parent decides when this run ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A device is a machine of its own: it does not share a host's real-time priority.
    with contextlib.suppress(AttributeError, OSError):
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    try:
        link = PseudoTerminal() if url is None else open_link(url, baud, timeout=0.01)
    except OSError as exc:
        connection.send(("error", f"cannot open the link: {exc}"))
        return
    closing = threading.Event()
    try:
        simulator = DeviceSimulator(
            config, link, on_streamed=lambda: connection.send(("streamed", None))
        )
        connection.send(("ready", getattr(link, "device_path", None)))
        listener = threading.Thread(
            target=_listen_to_parent, args=(connection, simulator, closing), daemon=True
        )
        listener.start()
        connection.send(("report", simulator.run()))
        # Keep the link open until the parent's host has stopped reading it.
        closing.wait()
    except Exception as exc:
        connection.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        link.close()


def _listen_to_parent(connection, simulator: DeviceSimulator, closing: threading.Event) -> None:
    """ "stop": end the run early; "close" or a vanished parent: also release the link."""
    try:
        while True:
            request = connection.recv()
            if request == "stop":
                simulator.stop()
            elif request == "close":
                break
    except (EOFError, OSError):
        simulator.stop()
    closing.set()


class SimulatorProcess:
    """A DeviceSimulator in its own process (spawned, so it shares no GIL or threads).

    `start()` returns the pseudo-terminal path the host should open (url None) or
    None (url given); `wait_streamed()` returns once the last sample is written;
    `join()` returns the SimulatorReport with its records. The link stays open
    after the run until `close()` (or leaving the `with` block), so the host can
    stop reading first instead of seeing the port vanish.
    """

    def __init__(
        self, config: SimulatorConfig, url: str | None = None, baud: int = DEFAULT_BAUD
    ) -> None:
        self.config = config
        self.url = url
        self.baud = baud
        self._process = None
        self._connection = None
        self._streamed = False
        self._outcome: tuple[str, object] | None = None

    def start(self, timeout: float = 30.0) -> str | None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(
            target=_process_main,
            name="bridge-sim",
            args=(self.config, self.url, self.baud, child),
            daemon=True,
        )
        self._process.start()
        child.close()
        if not self._connection.poll(timeout):
            self._process.kill()
            raise TimeoutError(f"the simulator process did not start within {timeout} s")
        kind, value = self._connection.recv()
        if kind == "error":
            raise LinkError(value)
        return value

    def stop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(OSError, ValueError):
                self._connection.send("stop")

    def wait_streamed(self, timeout: float | None = None) -> None:
        """Until the device has written its last sample (or its run ended another way)."""
        self._receive_until(lambda: self._streamed, timeout, "the end of the stream")

    def join(self, timeout: float | None = None) -> SimulatorReport:
        self._receive_until(lambda: self._outcome is not None, timeout, "simulator report")
        kind, value = self._outcome
        if kind == "error":
            raise RuntimeError(f"simulator failed: {value}")
        return value

    def _receive_until(self, done: Callable[[], bool], timeout: float | None, what: str) -> None:
        """Read the child's messages ("streamed", then "report" or "error") until done()."""
        if self._connection is None or self._process is None:
            raise RuntimeError("start() the simulator process first")
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done():
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._connection.poll(left):
                raise TimeoutError(f"no {what} within {timeout} s")
            kind, value = self._connection.recv()
            self._streamed = True  # every message after "ready" comes at or after the end
            if kind != "streamed":
                self._outcome = (kind, value)

    def close(self) -> None:
        """Release the link and end the process."""
        if self._connection is not None:
            with contextlib.suppress(OSError, ValueError):
                self._connection.send("close")
            self._connection.close()
            self._connection = None
        if self._process is not None:
            self._process.join(5.0)
            if self._process.is_alive():
                self._process.kill()
            self._process = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- bridge-sim --------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bridge-sim",
        description="Play joint angles as the device firmware would, over a pseudo-terminal "
        "(default: created here, its path printed) or any pyserial URL/port; read "
        "Estimate frames back and report round-trip latency, lost and late "
        "estimates. Ctrl-C ends the run early; the report follows.",
    )
    parser.add_argument("--port", help="pyserial URL or device path (default: a new pty)")
    parser.add_argument(
        "--baud", type=int, default=DEFAULT_BAUD, help=f"baud rate (default {DEFAULT_BAUD})"
    )
    parser.add_argument("--rate", type=float, default=100.0, help="samples per second")
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds to play (default 10; 0: until Ctrl-C)"
    )
    parser.add_argument("--motion", help="OpenSim .mot/.sto to play (default: normative gait)")
    parser.add_argument("--period", type=float, help="gait cycle period in s (default 1.235)")
    parser.add_argument(
        "--counts-per-rev",
        type=int,
        default=0,
        help="quantise like an encoder with this many counts per revolution",
    )
    parser.add_argument(
        "--send-counts",
        action="store_true",
        help="send raw int32 counts (needs --counts-per-rev) instead of radians",
    )
    parser.add_argument("--noise-deg", type=float, default=0.0, help="angle noise std (deg)")
    parser.add_argument("--drop", type=float, default=0.0, help="probability a sample is lost")
    parser.add_argument("--jitter-us", type=float, default=0.0, help="timestamp jitter std (µs)")
    parser.add_argument(
        "--nan", type=float, default=0.0, help="probability a sample carries a NaN channel"
    )
    parser.add_argument(
        "--garbage", type=float, default=0.0, help="probability of random bytes before a sample"
    )
    parser.add_argument(
        "--timestamp-start-us",
        type=int,
        default=0,
        help="device clock at start, µs (near 4294967295 tests wrapping)",
    )
    parser.add_argument(
        "--wait-for-host",
        type=float,
        default=60.0,
        help="seconds to wait for the host's Hello/Heartbeat before streaming",
    )
    parser.add_argument(
        "--late-ms",
        type=float,
        default=50.0,
        help="an estimate later than this after its sample counts as late",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--json", help="also write the report's figures to this JSON file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = SimulatorConfig(
            rate_hz=args.rate,
            duration_s=args.duration if args.duration != 0 else None,
            motion_file=args.motion,
            gait_period_s=args.period,
            encoding=P.ENCODING_COUNTS if args.send_counts else P.ENCODING_RADIANS,
            counts_per_rev=args.counts_per_rev,
            noise_rad=np.deg2rad(args.noise_deg),
            drop_probability=args.drop,
            jitter_us=args.jitter_us,
            nan_probability=args.nan,
            garbage_probability=args.garbage,
            timestamp_start_us=args.timestamp_start_us,
            wait_for_host_s=args.wait_for_host,
            late_after_ms=args.late_ms,
            seed=args.seed,
            keep_records=0,
        )  # the report's figures are all bridge-sim prints
        link = PseudoTerminal() if args.port is None else open_link(args.port, args.baud)
    except (SimulatorConfigError, LinkError) as exc:
        print(f"bridge-sim: {exc}", file=sys.stderr)
        return 2
    try:
        if args.port is None:
            print(f"device path: {link.device_path}", flush=True)
        if config.wait_for_host_s > 0:
            print(f"waiting up to {config.wait_for_host_s:g} s for the host", flush=True)
        with progress_bar(
            total=config.n_samples, unit="sample", mininterval=0.5, disable=not sys.stderr.isatty()
        ) as bar:
            simulator = DeviceSimulator(config, link, progress=bar.update)
            interrupted = threading.Event()

            def stop_on_ctrl_c(signum, frame) -> None:
                interrupted.set()
                simulator.stop()

            signal.signal(signal.SIGINT, stop_on_ctrl_c)
            report = simulator.run()
    except (MotionFileError, LinkError) as exc:
        print(f"bridge-sim: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C while starting, before the handler is set
        print("bridge-sim: interrupted", file=sys.stderr)
        return 130
    finally:
        link.close()
    print(report.summary())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(report.to_json(), out, indent=1, default=str)
    if interrupted.is_set() and config.duration_s is not None:
        print("bridge-sim: interrupted before the end of the run", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
