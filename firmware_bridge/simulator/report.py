"""What a simulated run saw on the link: the records it keeps and the figures it reports.

`LatencyHistogram` counts round trips in fixed memory, so a run with no preset
end reports percentiles as exact as a short one's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from firmware_bridge.codec import Estimate, Hello


@dataclass(frozen=True)
class SentSample:
    """One JointSample exactly as it went on the wire, and when (perf_counter_ns)."""

    seq: int
    timestamp_us: int
    values: tuple[float, ...] | tuple[int, ...]
    valid_mask: int
    encoding: int
    sent_ns: int


@dataclass(frozen=True)
class ReceivedEstimate:
    """One Estimate as it was decoded, and when it was read (perf_counter_ns)."""

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
        """The figures in one line, as bridge-sim prints them."""
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

    def to_json(self) -> dict[str, Any]:
        """The figures without the per-sample records."""
        out = asdict(self)
        del out["sent"], out["received"]
        return out


class LatencyHistogram:
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
