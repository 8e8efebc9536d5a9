"""A device that speaks the protocol as a microcontroller would, without hardware.

`DeviceSimulator` plays right-leg joint angles (the built-in normative gait or an
OpenSim .mot file) as `JointSample` frames at a fixed rate on a deadline
schedule, with optional encoder quantisation, noise, dropped samples, timestamp
jitter, NaN and garbage injection; sends Hello and Heartbeat; reads `Estimate`
frames back and reports round-trip latency percentiles, lost and late estimates.
It keeps the exact samples it sent and the estimates it received, so a test can
compare them with offline inference.

Run it in a thread (`DeviceSimulator.start/join`), in a separate process
(`SimulatorProcess`, so it does not share the runtime's GIL) or from the shell
(`bridge-sim`, which creates a pseudo-terminal and prints its path).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from firmware_bridge import protocol as P
from firmware_bridge.codec import Estimate, Heartbeat, Hello, JointSample, StreamDecoder, encode
from firmware_bridge.link import LinkError, PseudoTerminal, open_link
from firmware_bridge.motion_file import MotionFileError, read_joint_angles
from firmware_bridge.normative_gait import JOINT_NAMES, load_normative_gait

_WRAP_US = 1 << 32


class SimulatorConfigError(ValueError):
    """A simulator setting out of range; the message names it and what is allowed."""


@dataclass(frozen=True)
class SimulatorConfig:
    """What the simulated device plays and how it misbehaves.

    rate_hz: samples per second. duration_s: how long to play. motion_file: an
    OpenSim .mot/.sto with hip_flexion_r, knee_angle_r, ankle_angle_r (played in
    a loop), or None for the built-in normative gait with period gait_period_s
    (None: the real cycle's 1.235 s). encoding: P.ENCODING_RADIANS (float32 rad)
    or P.ENCODING_COUNTS (int32 counts = round(angle / (2π / counts_per_rev));
    sensors.json then needs scale 2π / counts_per_rev). counts_per_rev > 0 also
    quantises radians. noise_rad: Gaussian noise std. drop_probability: a sample
    is skipped (its seq still advances, as a lost UART frame would look).
    jitter_us: std of Gaussian error on the timestamp field. nan_probability: one
    channel is sent as NaN with its valid bit still set (counts: sent as 0 with the
    bit cleared). garbage_probability: random bytes (1-32) are written before a
    sample. timestamp_start_us: the device clock (µs) when the simulator starts;
    samples carry it plus the time since (set near 2^32 to test wrapping). wait_for_host_s: before streaming, wait up to this
    long for a Hello or Heartbeat from the host (0: stream at once).
    late_after_ms: an estimate received more than this after its sample was sent
    counts as late. drain_s: how long to keep reading after the last sample.
    """

    rate_hz: float = 100.0
    duration_s: float = 10.0
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
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            (1.0 <= self.rate_hz <= 5000.0, f"rate_hz must lie in 1..5000 Hz, got {self.rate_hz}"),
            (self.duration_s > 0, f"duration_s must be positive, got {self.duration_s}"),
            (self.gait_period_s is None or self.gait_period_s > 0,
             f"gait_period_s must be positive, got {self.gait_period_s}"),
            (self.encoding in (P.ENCODING_RADIANS, P.ENCODING_COUNTS),
             f"encoding must be {P.ENCODING_RADIANS} (radians) or {P.ENCODING_COUNTS} (counts)"),
            (self.counts_per_rev >= 0, "counts_per_rev must be >= 0 (0: no quantisation)"),
            (self.encoding != P.ENCODING_COUNTS or self.counts_per_rev > 0,
             "sending counts needs counts_per_rev > 0"),
            (self.noise_rad >= 0 and self.jitter_us >= 0, "noise and jitter must be >= 0"),
            (all(0 <= p <= 1 for p in (self.drop_probability, self.nan_probability,
                                       self.garbage_probability)),
             "probabilities must lie in 0..1"),
            (0 <= self.timestamp_start_us < _WRAP_US, "timestamp_start_us must fit 32 bits"),
            (0 < self.heartbeat_period_ms < 1 << 16, "heartbeat_period_ms must lie in 1..65535"),
            (self.wait_for_host_s >= 0 and self.drain_s >= 0 and self.late_after_ms > 0,
             "wait_for_host_s and drain_s must be >= 0, late_after_ms > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise SimulatorConfigError(message)

    @property
    def n_samples(self) -> int:
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
    """What happened on the link. Latencies are round trips: sample written to estimate read."""

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
            f"decoder errors {errors or 'none'}")

    def to_json(self) -> dict:
        """The figures without the per-sample records."""
        out = asdict(self)
        del out["sent"], out["received"]
        return out


class DeviceSimulator:
    """The device side of a link (`PseudoTerminal`, a pyserial port: anything with
    `read(size)` returning after its timeout and `write(data)`)."""

    def __init__(self, config: SimulatorConfig, link,
                 progress: Callable[[int], None] | None = None) -> None:
        self.config = config
        self.link = link
        self.progress = progress
        self._stop = threading.Event()
        self._host_heard = threading.Event()
        self._thread: threading.Thread | None = None
        self._report: SimulatorReport | None = None
        self._error: BaseException | None = None
        self._plan = _plan_samples(config)

    # -- life cycle -----------------------------------------------------------------------
    def run(self) -> SimulatorReport:
        """Play the whole configuration, blocking; returns the report."""
        return self._run()

    def start(self) -> None:
        """Play in a background thread; `join` returns the report."""
        self._thread = threading.Thread(target=self._run_in_thread, name="bridge-sim",
                                        daemon=True)
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
        except BaseException as exc:  # noqa: BLE001 - re-raised in join()
            self._error = exc

    # -- the device -----------------------------------------------------------------------
    def _run(self) -> SimulatorReport:
        session = _Session(self.config, self.link, self._stop, self._host_heard)
        reader = threading.Thread(target=session.read_loop, name="bridge-sim-reader",
                                  daemon=True)
        reader.start()
        try:
            session.send_hello(reply_requested=1)
            session.wait_for_host()
            elapsed_s = session.stream(self._plan, self.progress)
            session.drain()
        finally:
            session.reading.clear()
            reader.join(timeout=2.0)
        if session.link_error is not None:
            raise LinkError(f"the link failed while simulating: {session.link_error}")
        return session.report(self._plan, elapsed_s)


class _Session:
    """One run of the device: its clock, counters and records, the sending loop and the reader."""

    def __init__(self, config: SimulatorConfig, link, stop: threading.Event,
                 host_heard: threading.Event) -> None:
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
        self.sent: list[SentSample] = []
        self.received: list[ReceivedEstimate] = []
        self.host_hello: Hello | None = None
        self.heartbeats_received = 0
        self.bytes_not_written = 0
        self.overruns = 0
        self.dropped = 0
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
        self.send(encode(Hello(seq=self.hello_seq, timestamp_us=self.device_clock_us(),
                               role=P.ROLE_DEVICE, sample_rate_hz=cfg.rate_hz,
                               joint_names=JOINT_NAMES, encoding=cfg.encoding,
                               heartbeat_period_ms=cfg.heartbeat_period_ms,
                               reply_requested=reply_requested)))
        self.hello_seq += 1

    def send_heartbeat(self) -> None:
        self.send(encode(Heartbeat(seq=self.heartbeat_seq, timestamp_us=self.device_clock_us(),
                                   role=P.ROLE_DEVICE,
                                   heartbeat_period_ms=self.config.heartbeat_period_ms)))
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
                self.received.append(ReceivedEstimate(message, received_ns))
            elif isinstance(message, Heartbeat) and message.role == P.ROLE_HOST:
                self.heartbeats_received += 1
            elif isinstance(message, Hello) and message.role == P.ROLE_HOST:
                if message.reply_requested:
                    self.send_hello(reply_requested=0)
                self.host_hello = message
            else:
                continue
            self.host_heard.set()

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

    def stream(self, plan: _Plan, progress: Callable[[int], None] | None) -> float:
        """Send every planned sample on a deadline schedule (no drift); returns seconds taken."""
        cfg = self.config
        period_ns = round(1e9 / cfg.rate_hz)
        heartbeat_ns = cfg.heartbeat_period_ms * 1_000_000
        start_ns = time.perf_counter_ns()
        next_heartbeat_ns = start_ns
        progress_every = max(1, round(cfg.rate_hz / 10))
        for k in range(len(plan.values)):
            if self.stop.is_set():
                break
            deadline_ns = start_ns + k * period_ns
            now_ns = time.perf_counter_ns()
            if deadline_ns > now_ns:
                time.sleep((deadline_ns - now_ns) / 1e9)
            elif now_ns - deadline_ns > period_ns:
                self.overruns += 1
            if time.perf_counter_ns() >= next_heartbeat_ns:
                self.send_heartbeat()
                next_heartbeat_ns += heartbeat_ns
            if plan.garbage[k]:
                self.send(plan.garbage[k])
            if plan.dropped[k]:
                self.dropped += 1
            else:
                # The device read its sensors at the deadline; its clock then, plus jitter.
                timestamp_us = (self.device_clock_us(deadline_ns) + plan.jitter_us[k]) % _WRAP_US
                data = encode(JointSample(seq=k, timestamp_us=timestamp_us,
                                          values=plan.values[k], valid_mask=plan.valid_masks[k],
                                          encoding=cfg.encoding))
                sent_ns = time.perf_counter_ns()
                self.send(data)
                self.sent.append(SentSample(k, timestamp_us, plan.values[k],
                                            plan.valid_masks[k], cfg.encoding, sent_ns))
            if progress is not None and (k + 1) % progress_every == 0:
                progress(progress_every)
        return (time.perf_counter_ns() - start_ns) / 1e9

    def drain(self) -> None:
        """Wait up to drain_s for the estimate of the last sample sent."""
        until = time.perf_counter() + self.config.drain_s
        last_seq = self.sent[-1].seq if self.sent else None
        while time.perf_counter() < until:
            if self.received and self.received[-1].estimate.sample_seq == last_seq:
                return
            time.sleep(0.005)

    def report(self, plan: _Plan, elapsed_s: float) -> SimulatorReport:
        cfg = self.config
        by_seq = {s.seq: s for s in self.sent}
        latencies = []
        answered = set()
        unmatched = 0
        for r in self.received:
            sample = by_seq.get(r.estimate.sample_seq)
            if sample is None or sample.timestamp_us != r.estimate.sample_timestamp_us:
                unmatched += 1
                continue
            answered.add(sample.seq)
            latencies.append(r.received_ns - sample.sent_ns)
        latencies_ns = np.asarray(latencies, dtype=float)
        skipped = sum(r.estimate.skipped for r in self.received)
        return SimulatorReport(
            samples_scheduled=cfg.n_samples, samples_sent=len(self.sent),
            samples_dropped=self.dropped, garbage_bursts=sum(1 for g in plan.garbage if g),
            bytes_not_written=self.bytes_not_written, overruns=self.overruns,
            estimates_received=len(self.received), answered=len(answered),
            skipped_reported=skipped, lost=max(0, len(self.sent) - len(answered) - skipped),
            late=int(np.sum(latencies_ns > cfg.late_after_ms * 1e6)), unmatched=unmatched,
            latency_ms_p50=_percentile_ms(latencies_ns, 50),
            latency_ms_p99=_percentile_ms(latencies_ns, 99),
            latency_ms_p999=_percentile_ms(latencies_ns, 99.9),
            latency_ms_max=float(latencies_ns.max() / 1e6) if latencies_ns.size else math.nan,
            heartbeats_received=self.heartbeats_received, host_hello=self.host_hello,
            decoder_errors=dict(self.decoder.errors), elapsed_s=elapsed_s,
            sent=tuple(self.sent), received=tuple(self.received))


@dataclass(frozen=True)
class _Plan:
    """Everything random decided up front, so the loop only encodes and sends."""

    values: list[tuple]
    valid_masks: list[int]
    jitter_us: list[int]
    dropped: list[bool]
    garbage: list[bytes]


def source_angles(config: SimulatorConfig) -> np.ndarray:
    """The true angles (n_samples, 3) rad at the sample instants, before any corruption."""
    t = np.arange(config.n_samples) / config.rate_hz
    if config.motion_file is None:
        return load_normative_gait().angles_at_time(t, config.gait_period_s)
    file_time, angles = read_joint_angles(config.motion_file, JOINT_NAMES)
    span = file_time[-1] - file_time[0]
    local = file_time[0] + np.mod(t, span)
    return np.stack([np.interp(local, file_time, angles[:, j]) for j in range(3)], axis=1)


def _plan_samples(cfg: SimulatorConfig) -> _Plan:
    rng = np.random.default_rng(cfg.seed)
    n = cfg.n_samples
    q = source_angles(cfg)
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
    garbage = [rng.integers(0, 256, rng.integers(1, 33)).astype(np.uint8).tobytes()
               if g else b"" for g in garbage_rows]
    return _Plan(values, [int(m) for m in masks], [int(j) for j in jitter],
                 [bool(d) for d in dropped], garbage)


def _percentile_ms(latencies_ns: np.ndarray, q: float) -> float:
    return float(np.percentile(latencies_ns, q) / 1e6) if latencies_ns.size else math.nan


# -- a separate process --------------------------------------------------------------------
def _process_main(config: SimulatorConfig, url: str | None, baud: int, connection) -> None:
    try:
        link = PseudoTerminal() if url is None else open_link(url, baud, timeout=0.01)
    except OSError as exc:
        connection.send(("error", f"cannot open the link: {exc}"))
        return
    closing = threading.Event()
    try:
        simulator = DeviceSimulator(config, link)
        connection.send(("ready", getattr(link, "device_path", None)))
        listener = threading.Thread(target=_listen_to_parent,
                                    args=(connection, simulator, closing), daemon=True)
        listener.start()
        connection.send(("report", simulator.run()))
        # Keep the link open until the parent's host has stopped reading it.
        closing.wait()
    except Exception as exc:  # noqa: BLE001 - the parent gets one line, not a traceback
        connection.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        link.close()


def _listen_to_parent(connection, simulator: DeviceSimulator, closing: threading.Event) -> None:
    """"stop": end the run early; "close" or a vanished parent: also release the link."""
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
    None (url given); `join()` returns the SimulatorReport with every record. The
    link stays open after the run until `close()` (or leaving the `with` block), so
    the host can stop reading first instead of seeing the port vanish.
    """

    def __init__(self, config: SimulatorConfig, url: str | None = None,
                 baud: int = 921_600) -> None:
        self.config = config
        self.url = url
        self.baud = baud
        self._process = None
        self._connection = None

    def start(self, timeout: float = 30.0) -> str | None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_process_main, name="bridge-sim",
                                        args=(self.config, self.url, self.baud, child),
                                        daemon=True)
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
            try:
                self._connection.send("stop")
            except (OSError, ValueError):
                pass

    def join(self, timeout: float | None = None) -> SimulatorReport:
        if self._connection is None or self._process is None:
            raise RuntimeError("join() before start()")
        if not self._connection.poll(timeout):
            raise TimeoutError(f"no simulator report within {timeout} s")
        kind, value = self._connection.recv()
        if kind == "error":
            raise RuntimeError(f"simulator failed: {value}")
        return value

    def close(self) -> None:
        """Release the link and end the process."""
        if self._connection is not None:
            try:
                self._connection.send("close")
            except (OSError, ValueError):
                pass
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
                    "estimates.")
    parser.add_argument("--port", help="pyserial URL or device path (default: a new pty)")
    parser.add_argument("--baud", type=int, default=921_600, help="baud rate (default 921600)")
    parser.add_argument("--rate", type=float, default=100.0, help="samples per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds to play")
    parser.add_argument("--motion", help="OpenSim .mot/.sto to play (default: normative gait)")
    parser.add_argument("--period", type=float, help="gait cycle period in s (default 1.235)")
    parser.add_argument("--counts-per-rev", type=int, default=0,
                        help="quantise like an encoder with this many counts per revolution")
    parser.add_argument("--send-counts", action="store_true",
                        help="send raw int32 counts (needs --counts-per-rev) instead of radians")
    parser.add_argument("--noise-deg", type=float, default=0.0, help="angle noise std (deg)")
    parser.add_argument("--drop", type=float, default=0.0, help="probability a sample is lost")
    parser.add_argument("--jitter-us", type=float, default=0.0, help="timestamp jitter std (µs)")
    parser.add_argument("--nan", type=float, default=0.0,
                        help="probability a sample carries a NaN channel")
    parser.add_argument("--garbage", type=float, default=0.0,
                        help="probability of random bytes before a sample")
    parser.add_argument("--timestamp-start-us", type=int, default=0,
                        help="device clock at start, µs (near 4294967295 tests wrapping)")
    parser.add_argument("--wait-for-host", type=float, default=60.0,
                        help="seconds to wait for the host's Hello/Heartbeat before streaming")
    parser.add_argument("--late-ms", type=float, default=50.0,
                        help="an estimate later than this after its sample counts as late")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--json", help="also write the report's figures to this JSON file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = SimulatorConfig(
            rate_hz=args.rate, duration_s=args.duration, motion_file=args.motion,
            gait_period_s=args.period,
            encoding=P.ENCODING_COUNTS if args.send_counts else P.ENCODING_RADIANS,
            counts_per_rev=args.counts_per_rev, noise_rad=np.deg2rad(args.noise_deg),
            drop_probability=args.drop, jitter_us=args.jitter_us, nan_probability=args.nan,
            garbage_probability=args.garbage, timestamp_start_us=args.timestamp_start_us,
            wait_for_host_s=args.wait_for_host, late_after_ms=args.late_ms, seed=args.seed)
        link = PseudoTerminal() if args.port is None else open_link(args.port, args.baud)
    except (SimulatorConfigError, LinkError) as exc:
        print(f"bridge-sim: {exc}", file=sys.stderr)
        return 2
    from tqdm import tqdm

    try:
        if args.port is None:
            print(f"device path: {link.device_path}", flush=True)
        if config.wait_for_host_s > 0:
            print(f"waiting up to {config.wait_for_host_s:g} s for the host", flush=True)
        with tqdm(total=config.n_samples, unit="sample", mininterval=0.5,
                  disable=not sys.stderr.isatty()) as bar:
            simulator = DeviceSimulator(config, link, progress=bar.update)
            report = simulator.run()
    except MotionFileError as exc:
        print(f"bridge-sim: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bridge-sim: interrupted", file=sys.stderr)
        return 130
    finally:
        link.close()
    print(report.summary())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(report.to_json(), out, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
