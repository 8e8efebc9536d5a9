"""From device samples to the network's input window, exactly as training builds it.

A device may sample at 1 kHz and the model at 100 Hz: every device sample is
answered with a window that *ends at that sample's device timestamp*. The last
``history_length(window)`` points of a uniform grid at the bundle's rate, ending
there, are linearly interpolated from the ring's samples (``resample_uniform``,
from device timestamps, so jitter and dropped samples change nothing), and the
causal velocity and acceleration come from ``network_inputs`` — the same two
functions training uses (edge/derivatives.py), so runtime and training inputs are
equal bit for bit.

Lookahead: a bundle trained with lookahead N predicts grid row ``window - 1 - N``,
i.e. the instant N / rate seconds before the newest sample. The Hill model uses
the angle and causal velocity of that same row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.derivatives import DERIVATIVE_TAPS, history_length, network_inputs, resample_uniform
from edge.ring_buffer import SampleRing


@dataclass(frozen=True)
class WindowSpec:
    """What the bundle's network expects.

    ``window``: feature rows per input; ``rate_hz``: the model's uniform grid rate;
    ``lookahead``: model steps between the newest sample and the predicted instant.
    """

    window: int
    rate_hz: float
    lookahead: int = 0
    taps: int = DERIVATIVE_TAPS

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
    """Builds the (1, window, 9) float32 network input into one preallocated buffer."""

    def __init__(self, spec: WindowSpec) -> None:
        self.spec = spec
        self.input = np.zeros((1, spec.window, 9), dtype=np.float32)
        self.features = np.zeros((spec.window, 9))

    def ready(self, ring: SampleRing) -> bool:
        """True when the ring's samples cover a full window ending at the newest one."""
        return len(ring) >= 2 and ring.newest_time - self.spec.history_s >= ring.oldest_time

    def build(self, ring: SampleRing) -> np.ndarray:
        """Fill and return ``self.input`` for a window ending at the ring's newest sample.

        The caller checks ``ready(ring)`` first.
        """
        spec = self.spec
        t = ring.times()
        t_end = t[-1]
        first = int(np.searchsorted(t, t_end - spec.history_s, side="right")) - 1
        q_grid = resample_uniform(
            t[first:], ring.angles()[first:], t_end, spec.rate_hz, spec.grid_points
        )
        self.features = network_inputs(q_grid, spec.rate_hz, spec.taps)
        self.input[0] = self.features
        return self.input

    @property
    def answered_angles(self) -> np.ndarray:
        """Angles (3,) rad at the predicted instant, from the last ``build``."""
        return self.features[self.spec.answered_row, 0::3]

    @property
    def answered_velocities(self) -> np.ndarray:
        """Causal angular velocities (3,) rad/s at the predicted instant."""
        return self.features[self.spec.answered_row, 1::3]


def offline_window(
    t_s: np.ndarray, q: np.ndarray, t_end_s: float, spec: WindowSpec
) -> np.ndarray:
    """The (1, window, 9) float32 input for a window ending at ``t_end_s``, from whole arrays.

    The reference the runtime is checked against: the same functions, no ring.
    """
    q_grid = resample_uniform(t_s, q, t_end_s, spec.rate_hz, spec.grid_points)
    return network_inputs(q_grid, spec.rate_hz, spec.taps)[None].astype(np.float32)
