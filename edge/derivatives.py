"""Causal joint velocity and acceleration estimates: the network's kinematic inputs.

The network sees, per joint, the angle and the velocity and acceleration that a
runtime can know at the moment a sample arrives: nothing from the future. Training
(train/windows.py) and the runtime (edge/runtime.py) both build their inputs here,
so the two cannot disagree; train/ imports this module, edge/ never imports train/.

Estimator: a least-squares quadratic fitted to the last ``DERIVATIVE_TAPS`` samples
of a uniform grid at the model's sample rate and differentiated at the newest
sample (a causal Savitzky-Golay filter). Why this one:
- it is a fixed FIR on a uniform grid, so training and runtime agree bit for bit;
- a quadratic over 5 samples (40 ms at 100 Hz) rejects encoder quantisation and IMU
  noise far better than a two-point difference, at a known delay (the acceleration
  estimate is that of the stencil's centre, 2 samples back), which the network
  learns around because it sees the same delay in training;
- the runtime first resamples the device's samples onto that grid from their own
  timestamps (``resample_uniform``), so a 1 kHz device, jitter and dropped samples
  all yield the same grid as training data resampled from a 60 Hz or 1 kHz file.

The physics loss does not use these estimates: it uses the best non-causal
estimate at the predicted sample (train/trial.py).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from calib.coordinates import SAGITTAL_COORDINATES

DERIVATIVE_TAPS = 5
"""Samples of the uniform grid in one causal stencil (newest last)."""

DERIVATIVE_ORDER = 2
"""Degree of the local polynomial fitted to each stencil."""

FEATURES_PER_JOINT = 3
SAGITTAL_INPUTS = SAGITTAL_COORDINATES
"""The network's default input coordinates: the sagittal ones, what an encoder exoskeleton
measures."""


def input_feature_names(coordinates: tuple[str, ...] = SAGITTAL_INPUTS) -> tuple[str, ...]:
    """Column order of the network's input for these input coordinates: coordinate-major
    (angle rad, velocity rad/s, acceleration rad/s^2), e.g. hip_flexion_q, hip_flexion_qd,
    hip_flexion_qdd, knee_angle_q, ..."""
    return tuple(f"{c}_{quantity}" for c in coordinates for quantity in ("q", "qd", "qdd"))


INPUT_FEATURES = input_feature_names()
"""The default (sagittal) input columns."""


@lru_cache(maxsize=16)
def _unit_weights(taps: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Stencil weights for a unit sample interval, oldest sample first."""
    if taps <= order:
        raise ValueError(
            f"a causal stencil of {taps} samples cannot fit a degree-{order} polynomial"
        )
    offsets = np.arange(-(taps - 1), 1, dtype=np.float64)
    vandermonde = np.vander(offsets, order + 1, increasing=True)
    fit = np.linalg.pinv(vandermonde)
    velocity = fit[1].copy()
    acceleration = 2.0 * fit[2] if order >= 2 else np.zeros(taps)
    velocity.setflags(write=False)
    acceleration.setflags(write=False)
    return velocity, acceleration


def causal_derivative_weights(
    rate_hz: float, taps: int = DERIVATIVE_TAPS, order: int = DERIVATIVE_ORDER
) -> tuple[np.ndarray, np.ndarray]:
    """FIR weights (w_vel in 1/s, w_acc in 1/s^2), oldest sample first.

    ``qd[n] = w_vel @ q[n-taps+1 : n+1]`` and likewise ``qdd``, for samples of a
    uniform grid at ``rate_hz``.
    """
    if not np.isfinite(rate_hz) or rate_hz <= 0:
        raise ValueError(f"sample rate must be a positive number of Hz, got {rate_hz!r}")
    velocity, acceleration = _unit_weights(taps, order)
    return velocity * rate_hz, acceleration * rate_hz**2


def network_inputs(
    q_uniform: np.ndarray, rate_hz: float, taps: int = DERIVATIVE_TAPS
) -> np.ndarray:
    """Network features of every sample that has a full causal stencil.

    q_uniform: (N, J) angles in rad of the J input coordinates on a uniform grid
    at ``rate_hz``. Returns (N - taps + 1, 3 J): row i belongs to sample
    ``i + taps - 1``, columns in ``input_feature_names`` order.
    """
    q = np.asarray(q_uniform, dtype=np.float64)
    if q.ndim != 2 or q.shape[1] < 1:
        raise ValueError(f"expected joint angles of shape (N, joints), got {q.shape}")
    if q.shape[0] < taps:
        raise ValueError(f"need at least {taps} samples for one causal stencil, got {q.shape[0]}")
    w_vel, w_acc = causal_derivative_weights(rate_hz, taps)
    stencils = np.lib.stride_tricks.sliding_window_view(q, taps, axis=0)  # (N-taps+1, J, taps)
    n_joints = q.shape[1]
    features = np.empty((stencils.shape[0], n_joints, FEATURES_PER_JOINT))
    features[:, :, 0] = stencils[:, :, -1]
    features[:, :, 1] = stencils @ w_vel
    features[:, :, 2] = stencils @ w_acc
    return features.reshape(stencils.shape[0], n_joints * FEATURES_PER_JOINT)


def history_length(window: int, taps: int = DERIVATIVE_TAPS) -> int:
    """Uniform samples needed to build one window of ``window`` feature rows."""
    return window + taps - 1


def resample_uniform(
    t_s: np.ndarray, q: np.ndarray, t_end_s: float, rate_hz: float, n: int
) -> np.ndarray:
    """Angles at ``t_end_s - (n-1-i)/rate_hz``, i = 0..n-1, linearly interpolated.

    t_s: (K,) strictly increasing device timestamps in s; q: (K, J) rad. Grid
    points before ``t_s[0]`` take the first sample's value: callers check
    ``t_end_s - (n-1)/rate_hz >= t_s[0]`` when they need a full history.
    """
    grid = t_end_s - np.arange(n - 1, -1, -1, dtype=np.float64) / rate_hz
    out = np.empty((n, q.shape[1]))
    for joint in range(q.shape[1]):
        out[:, joint] = np.interp(grid, t_s, q[:, joint])
    return out
