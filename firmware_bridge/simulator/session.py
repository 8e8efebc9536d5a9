"""One run of a simulated device: its clock, counters and records, the sending loop and the reader.

The sending loop plays planned samples on a deadline schedule with heartbeats
between them; the reader, on its own thread, matches each Estimate to the sample
it answers and counts the round trip. `Session.report` turns the counts into a
`SimulatorReport`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction

from firmware_bridge import protocol as P
from firmware_bridge.codec import (
    Estimate,
    Heartbeat,
    Hello,
    JointSample,
    Message,
    StreamDecoder,
    encode,
)
from firmware_bridge.link import Link
from firmware_bridge.normative_gait import JOINT_NAMES
from firmware_bridge.simulator.config import SimulatorConfig
from firmware_bridge.simulator.plan import PlannedSample
from firmware_bridge.simulator.report import (
    LatencyHistogram,
    ReceivedEstimate,
    SentSample,
    SimulatorReport,
)
from firmware_bridge.timestamps import WRAP_US

PENDING_S = 10.0
"""An estimate arriving more than this after its sample was sent counts as unmatched."""


class Session:
    """The state of one run: `stream` sends on the device clock, `read_loop` (on its own
    thread) reads the host's frames, `report` sums up."""

    def __init__(
        self,
        config: SimulatorConfig,
        link: Link,
        stop: threading.Event,
        host_heard: threading.Event,
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
        self.pending_limit = max(1, round(config.rate_hz * PENDING_S))
        self.pending_lock = threading.Lock()
        self.latency = LatencyHistogram()
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
        return (self.config.timestamp_start_us + (at_ns - self.t0_ns) // 1000) % WRAP_US

    def send(self, data: bytes) -> None:
        """Write data, counting the bytes the link refused (a UART overrun would lose them)."""
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
        """Read and handle host frames until `reading` is cleared or the link fails."""
        while self.reading.is_set():
            try:
                data = self.link.read(4096)
            except OSError as exc:  # the port went away: stop and say so
                self.link_error = str(exc)
                self.stop.set()
                return
            if data:
                self._on_messages(self.decoder.feed(data), time.perf_counter_ns())

    def _on_messages(self, messages: Iterable[Message], received_ns: int) -> None:
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
        self, planned: Iterator[PlannedSample], progress: Callable[[int], None] | None
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
            self._play(k % WRAP_US, deadline_ns, planned_sample)  # seq: a u32, like the clock
            if progress is not None and (k + 1) % progress_every == 0:
                progress(progress_every)
        return (time.perf_counter_ns() - start_ns) / 1e9

    def _play(self, seq: int, deadline_ns: int, planned: PlannedSample) -> None:
        """Send one planned sample (or drop it), with its garbage burst first."""
        self.played += 1
        if planned.garbage:
            self.garbage_bursts += 1
            self.send(planned.garbage)
        if planned.dropped:
            self.dropped += 1
            return
        # The device read its sensors at the deadline; its clock then, plus jitter.
        timestamp_us = (self.device_clock_us(deadline_ns) + planned.jitter_us) % WRAP_US
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
        """The figures and records of the run so far; elapsed_s: how long streaming took."""
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
