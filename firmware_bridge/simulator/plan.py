"""The samples a simulated device plays: true angles, then every fault decided in advance.

`AngleSource` gives the true angles (the normative gait, or a motion file looped);
`planned_samples` corrupts them a short chunk at a time from one seeded
generator, so a run is reproducible, has no preset end, and the sending loop
only encodes and writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from firmware_bridge import protocol as P
from firmware_bridge.motion_file import read_joint_angles
from firmware_bridge.normative_gait import JOINT_NAMES, NormativeGait, load_normative_gait
from firmware_bridge.simulator.config import SimulatorConfig

CHUNK_S = 0.02
"""Samples are made this many seconds of play at a time, in the slack before a deadline."""

Values = tuple[float, ...] | tuple[int, ...]
"""A JointSample's channels: float32 radians or int32 counts."""


class PlannedSample(NamedTuple):
    """One sample with everything random about it decided, so the loop only encodes and sends."""

    values: Values
    valid_mask: int
    jitter_us: int
    dropped: bool
    garbage: bytes


class AngleSource:
    """The true angles the device plays, before any corruption: the normative gait, or a
    motion file played in a loop (raises MotionFileError for a file it cannot play)."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.rate_hz = config.rate_hz
        self.gait_period_s = config.gait_period_s
        self._gait: NormativeGait | None = None
        if config.motion_file is None:
            self._gait = load_normative_gait()
        else:
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
    return AngleSource(config).angles(0, config.n_samples)


def planned_samples(cfg: SimulatorConfig, source: AngleSource) -> Iterator[PlannedSample]:
    """The run's samples, made CHUNK_S of play at a time from one seeded generator;
    endless when the run has no duration."""
    rng = np.random.default_rng(cfg.seed)
    chunk = max(1, round(cfg.rate_hz * CHUNK_S))
    start = 0
    while cfg.n_samples is None or start < cfg.n_samples:
        count = chunk if cfg.n_samples is None else min(chunk, cfg.n_samples - start)
        yield from plan_chunk(cfg, rng, source.angles(start, count))
        start += count


def plan_chunk(
    cfg: SimulatorConfig, rng: np.random.Generator, q: np.ndarray
) -> list[PlannedSample]:
    """Corrupt true angles q (n, 3) rad as configured and decide every sample's faults."""
    n: int = q.shape[0]
    n_channels: int = q.shape[1]
    if cfg.noise_rad > 0:
        q = q + rng.normal(0.0, cfg.noise_rad, q.shape)
    masks = np.full(n, (1 << n_channels) - 1, dtype=np.int64)
    nan_rows = rng.random(n) < cfg.nan_probability
    nan_channels = rng.integers(0, n_channels, n)
    values: list[Values]
    if cfg.counts_per_rev > 0:
        step = 2 * np.pi / cfg.counts_per_rev
        counts: npt.NDArray[np.int64] = np.round(q / step).astype(np.int64)
        q = counts * step
    if cfg.encoding == P.ENCODING_COUNTS:  # the config ensures counts_per_rev > 0
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
        PlannedSample(v, int(m), int(j), bool(d), g)
        for v, m, j, d, g in zip(values, masks, jitter, dropped, garbage)
    ]
