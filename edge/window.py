"""From device samples to the network's input window, exactly as training builds it.

A device may sample at 1 kHz and the model at 100 Hz: every device sample is
answered with a window that *ends at that sample's device timestamp*. The last
``history_length(window)`` points of a uniform grid at the bundle's rate, ending
there, are linearly interpolated from the ring's samples (``resample_uniform``,
from device timestamps, so jitter and dropped samples change nothing), and the
causal velocity and acceleration come from the causal FIR of ``network_inputs``
— what training uses (edge/derivatives.py). The runtime evaluates both in one
Numba kernel (``window_features``: numpy's interpolation formula, the same FIR
weights), about 1 µs instead of ~30 µs for the numpy calls; a test holds it equal
to ``resample_uniform`` + ``network_inputs`` to 1e-12.

Lookahead: a bundle trained with lookahead N predicts grid row ``window - 1 - N``,
i.e. the instant N / rate seconds before the newest sample. The Hill model uses
the angle and causal velocity of that same row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from calib.sensors import SensorMap
from edge.derivatives import (
    DERIVATIVE_TAPS,
    causal_derivative_weights,
    history_length,
    network_inputs,
    resample_uniform,
)
from edge.ring_buffer import SampleRing


class SampleMapper:
    """Raw device channels -> OpenSim joint angles (rad), checked, without allocation.

    ``joints`` names the coordinates the sensors measure (``calib.coordinates`` order) and
    ``joint_ranges`` their (lo, hi) ranges (rad). The same arithmetic as
    ``calib.sensors.SensorMap.to_radians`` (``sign * scale * (raw - zero_offset)`` in
    float64), so runtime angles equal offline ones bit for bit. A sample is
    *invalid* when a channel a joint uses is marked invalid or is not finite, *out
    of range* when an angle lies outside the subject's joint range widened by
    ``margin_rad``.
    """

    def __init__(
        self,
        sensors: SensorMap,
        joints: tuple[str, ...],
        joint_ranges: tuple[tuple[float, float], ...],
        margin_rad: float,
    ) -> None:
        by_joint = {c.coordinate: (i, c) for i, c in enumerate(sensors.channels) if c.coordinate}
        self.n_channels = len(sensors.channels)
        self.channel = tuple(by_joint[j][0] for j in joints)
        self.gain = tuple(by_joint[j][1].sign * by_joint[j][1].scale for j in joints)
        self.offset = tuple(by_joint[j][1].zero_offset for j in joints)
        self.mask = sum(1 << i for i in self.channel)
        self.lo = tuple(lo - margin_rad for lo, _ in joint_ranges)
        self.hi = tuple(hi + margin_rad for _, hi in joint_ranges)
        self.angles = np.zeros(len(joints))

    def map(self, values, valid_mask: int) -> tuple[bool, bool]:
        """Fill ``self.angles`` from one sample's channel values; returns (valid, in_range)."""
        if len(values) != self.n_channels or valid_mask & self.mask != self.mask:
            return False, True
        in_range = True
        for j in range(len(self.channel)):
            raw = values[self.channel[j]]
            angle = self.gain[j] * (float(raw) - self.offset[j])
            if not math.isfinite(angle):
                return False, True
            if not self.lo[j] <= angle <= self.hi[j]:
                in_range = False
            self.angles[j] = angle
        return True, in_range


@dataclass(frozen=True)
class WindowSpec:
    """What the bundle's network expects.

    ``window``: feature rows per input; ``rate_hz``: the model's uniform grid rate;
    ``lookahead``: model steps between the newest sample and the predicted instant;
    ``n_joints``: coordinates in the input (three features each).
    """

    window: int
    rate_hz: float
    lookahead: int = 0
    taps: int = DERIVATIVE_TAPS
    n_joints: int = 3

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"window must be at least 1 row, got {self.window}")
        if not self.rate_hz > 0:
            raise ValueError(f"model sample rate must be positive, got {self.rate_hz} Hz")
        if not 0 <= self.lookahead < self.window:
            raise ValueError(
                f"lookahead must lie in [0, {self.window - 1}] for a window of "
                f"{self.window}, got {self.lookahead}"
            )

    @property
    def grid_points(self) -> int:
        """Uniform samples one window needs (window + causal stencil - 1)."""
        return history_length(self.window, self.taps)

    @property
    def history_s(self) -> float:
        """Seconds of device history one window spans, newest sample included."""
        return (self.grid_points - 1) / self.rate_hz

    @property
    def delay_s(self) -> float:
        """How far the predicted instant lies behind the newest sample, s."""
        return self.lookahead / self.rate_hz

    @property
    def answered_row(self) -> int:
        return self.window - 1 - self.lookahead


class WindowBuilder:
    """Builds the float32 network input (1, window, 3 * len(input_joints)) into one
    preallocated buffer, from a window of all ``spec.n_joints`` measured coordinates.

    ``input_joints``: which of the measured coordinates (indices, in order) the network
    reads; default all of them. ``features`` (window, 3 * n_joints) keeps every measured
    coordinate, for the Hill model."""

    def __init__(self, spec: WindowSpec, input_joints: tuple[int, ...] | None = None) -> None:
        self.spec = spec
        if input_joints is None:
            input_joints = tuple(range(spec.n_joints))
        if not input_joints or any(not 0 <= j < spec.n_joints for j in input_joints):
            raise ValueError(
                f"input joints {input_joints} must name some of the "
                f"{spec.n_joints} measured coordinates"
            )
        self.input_columns = np.array(
            [3 * j + f for j in input_joints for f in range(3)], dtype=np.int64
        )
        self.input = np.zeros((1, spec.window, self.input_columns.size), dtype=np.float32)
        self.features = np.zeros((spec.window, 3 * spec.n_joints))
        self._grid = np.zeros((spec.grid_points, spec.n_joints))
        self.answered_angles = self.features[spec.answered_row, 0::3]
        """Angles (n_joints,) rad at the predicted instant, from the last ``build`` (a view)."""
        self.answered_velocities = self.features[spec.answered_row, 1::3]
        """Causal angular velocities (n_joints,) rad/s at the predicted instant (a view)."""
        w_vel, w_acc = causal_derivative_weights(spec.rate_hz, spec.taps)
        self._w_vel = np.ascontiguousarray(w_vel)
        self._w_acc = np.ascontiguousarray(w_acc)

    def warmup(self) -> None:
        """Compile (or load from Numba's cache) the window kernel before the loop starts."""
        ring = SampleRing(4, self.spec.n_joints)
        for i in range(4):
            ring.push(i, i * self.spec.history_s, np.zeros(self.spec.n_joints))
        self.build(ring)

    def ready(self, ring: SampleRing) -> bool:
        """True when the ring's samples cover a full window ending at the newest one."""
        return len(ring) >= 2 and ring.span_s >= self.spec.history_s

    def build(self, ring: SampleRing) -> np.ndarray:
        """Fill and return ``self.input`` for a window ending at the ring's newest sample.

        The caller checks ``ready(ring)`` first.
        """
        window_features(*self.kernel_inputs(ring))
        return self.input

    def kernel_inputs(
        self, ring: SampleRing
    ) -> tuple[
        np.ndarray,
        np.ndarray,
        float,
        np.ndarray,
        np.ndarray,
        np.ndarray,
        np.ndarray,
        np.ndarray,
        np.ndarray,
    ]:
        """The arguments of ``window_features`` for a window ending at the ring's newest
        sample (for a compiled caller that builds the window itself)."""
        return (
            ring.times(),
            ring.angles(),
            self.spec.rate_hz,
            self._w_vel,
            self._w_acc,
            self._grid,
            self.features,
            self.input_columns,
            self.input[0],
        )


@numba.njit(cache=True)
def window_features(
    t, q, rate_hz, w_vel, w_acc, grid, features, input_columns, out32
):  # pragma: no cover
    """Resample (t, q) onto ``grid`` (ending at t[-1]), fill the causal ``features`` and
    copy the network's columns (``input_columns``) into ``out32``.

    Interpolation as numpy.interp computes it (slope * (x - x_j) + y_j, exact hits
    return y_j); features as edge.derivatives.network_inputs (joint-major q, qd, qdd).
    """
    n = grid.shape[0]
    joints = grid.shape[1]
    taps = w_vel.shape[0]
    k = t.shape[0]
    t_end = t[k - 1]
    j = k - 1
    for i in range(n - 1, -1, -1):
        x = t_end - (n - 1 - i) / rate_hz
        while j > 0 and t[j] > x:
            j -= 1
        for c in range(joints):
            if x >= t[k - 1]:
                grid[i, c] = q[k - 1, c]
            elif x < t[0]:
                grid[i, c] = q[0, c]
            elif t[j] == x:
                grid[i, c] = q[j, c]
            else:
                slope = (q[j + 1, c] - q[j, c]) / (t[j + 1] - t[j])
                value = slope * (x - t[j]) + q[j, c]
                if math.isnan(value):
                    value = slope * (x - t[j + 1]) + q[j + 1, c]
                grid[i, c] = value
    rows = features.shape[0]
    for r in range(rows):
        for c in range(joints):
            vel = 0.0
            acc = 0.0
            for s in range(taps):
                vel += grid[r + s, c] * w_vel[s]
                acc += grid[r + s, c] * w_acc[s]
            features[r, 3 * c] = grid[r + taps - 1, c]
            features[r, 3 * c + 1] = vel
            features[r, 3 * c + 2] = acc
        for k in range(input_columns.shape[0]):
            out32[r, k] = features[r, input_columns[k]]


def offline_window(t_s: np.ndarray, q: np.ndarray, t_end_s: float, spec: WindowSpec) -> np.ndarray:
    """The (1, window, 3 J) float32 input for a window ending at ``t_end_s``, from whole
    arrays q (N, J).

    The reference the runtime is checked against: the same functions, no ring.
    """
    q_grid = resample_uniform(t_s, q, t_end_s, spec.rate_hz, spec.grid_points)
    return network_inputs(q_grid, spec.rate_hz, spec.taps)[None].astype(np.float32)
