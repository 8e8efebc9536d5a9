"""What a simulated device plays and how it misbehaves: `SimulatorConfig`, checked on creation."""

from __future__ import annotations

from dataclasses import dataclass

from firmware_bridge import protocol as P
from firmware_bridge.timestamps import WRAP_US


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
        probabilities = (self.drop_probability, self.nan_probability, self.garbage_probability)
        rules: list[tuple[bool, str]] = [
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
            (all(0 <= p <= 1 for p in probabilities), "probabilities must lie in 0..1"),
            (0 <= self.timestamp_start_us < WRAP_US, "timestamp_start_us must fit 32 bits"),
            (0 < self.heartbeat_period_ms < 1 << 16, "heartbeat_period_ms must lie in 1..65535"),
            (
                self.wait_for_host_s >= 0 and self.drain_s >= 0 and self.late_after_ms > 0,
                "wait_for_host_s and drain_s must be >= 0, late_after_ms > 0",
            ),
            (self.keep_records >= 0, f"keep_records must be >= 0, got {self.keep_records}"),
        ]
        for ok, message in rules:
            if not ok:
                raise SimulatorConfigError(message)

    @property
    def n_samples(self) -> int | None:
        """Samples in the run; None when it plays until stopped."""
        if self.duration_s is None:
            return None
        return max(1, round(self.duration_s * self.rate_hz))
