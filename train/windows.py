"""Training windows: the network's causal inputs and the physics loss's per-sample targets.

From each ``train.trial.LegTrial`` (uniform samples at ``rate_hz``):

- inputs: ``edge.derivatives.network_inputs`` of the trial's angles, i.e. the
  runtime's exact causal velocity/acceleration estimator; a window is
  ``window`` consecutive feature rows (20 by default, stride 2 between windows,
  Section III-C1);
- the predicted sample of a window is its end minus ``lookahead`` (train.model);
- at that sample, everything the loss needs that does not depend on the
  network's output, from ``train.physics_targets`` (the same targets
  ``train-so`` balances): ``required_torque`` tau_req (C,) N m of the balanced
  coordinates, ``moment_arms`` R (M, C) m, and ``force_gain`` A and
  ``force_passive`` P (M,) N with F = A * a + P (eq. 18; A * a is the active
  part, what OpenSim's static optimisation reports as force).

  Precomputing these makes one training step a few batched products, which is
  what keeps label-free training fast on a CPU.

Input noise (``angle_noise_features``): training may perturb the joint
angles a window's inputs were computed from (``train.dataset.perturb_inputs``,
``TrainingConfig.input_noise_deg``); the features are linear in the angles, so the inputs of
the noisy angles are the clean inputs plus the features of the noise alone,
and the targets above keep the clean non-causal derivatives.

Balanced coordinates and inputs are separate choices (``WindowConfig``):
the loss balances the five coordinates (or the sagittal three), while the
network reads the angles of ``input_coordinates`` (by default the sagittal
three an encoder exoskeleton measures).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch

from calib.coordinates import COORDINATES
from edge.derivatives import (
    DERIVATIVE_TAPS,
    FEATURES_PER_JOINT,
    SAGITTAL_INPUTS,
    causal_derivative_weights,
    network_inputs,
)
from train.physics_targets import PhysicsOptions, SamplePhysics, trial_physics
from train.trial import LegTrial


class WindowError(ValueError):
    """Trials that cannot make training windows; the message says why and what to change."""


@dataclass(frozen=True)
class WindowConfig:
    """How trials are cut into windows (Section III-C1 defaults) and what the windows carry:
    ``balanced`` the coordinates the loss balances, ``input_coordinates`` those the
    network reads, ``base_motion`` as in ``train.physics_targets.PhysicsOptions``."""

    window: int = 20
    stride: int = 2
    lookahead: int = 0
    base_motion: bool = True
    balanced: tuple[str, ...] = COORDINATES
    input_coordinates: tuple[str, ...] = SAGITTAL_INPUTS

    def __post_init__(self) -> None:
        if self.window < 1 or self.stride < 1:
            raise WindowError(f"window and stride must be >= 1, got {self.window}, {self.stride}")
        if not 0 <= self.lookahead < self.window:
            raise WindowError(
                f"lookahead must be in [0, {self.window - 1}] samples, got {self.lookahead}"
            )
        unknown = [c for c in self.input_coordinates if c not in COORDINATES]
        if unknown:
            raise WindowError(f"input coordinates {unknown} are not among {list(COORDINATES)}")
        object.__setattr__(self, "balanced", tuple(self.balanced))
        object.__setattr__(self, "input_coordinates", tuple(self.input_coordinates))

    @property
    def physics(self) -> PhysicsOptions:
        return PhysicsOptions(balanced=self.balanced, base_motion=self.base_motion)


SHARED = {"shared": True}
"""Field metadata of ``WindowSet``'s values that hold for every window (not one per window)."""


@dataclass(frozen=True, eq=False)
class WindowSet(SamplePhysics):
    """K windows and the per-sample physics (``SamplePhysics``) of each window's predicted
    sample.

    inputs (K, W, 3 J) float32 raw SI features of the J ``input_coordinates``;
    q, qd, qdd (K, 5) rad, rad/s, rad/s^2 (the full pose, non-causal);
    required_torque (K, C) N m and moment_arms (K, M, C) m of the C ``balanced``
    coordinates; force_gain A, force_passive P (K, M) N (force A * a + P, active
    part A * a); contact (K,) bool; time (K,) s of the predicted sample; trial (K,)
    index into ``trial_names``; labels (K, M) reference activations or None.
    Every field is one value per window except those marked ``SHARED``.
    """

    inputs: np.ndarray
    contact: np.ndarray
    time: np.ndarray
    trial: np.ndarray
    trial_names: tuple[str, ...] = field(metadata=SHARED)
    rate_hz: float = field(metadata=SHARED)
    balanced: tuple[str, ...] = field(metadata=SHARED)
    input_coordinates: tuple[str, ...] = field(metadata=SHARED)
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    @classmethod
    def per_window_fields(cls) -> tuple[str, ...]:
        """The names of the fields that hold one row per window."""
        return tuple(f.name for f in fields(cls) if not f.metadata.get("shared"))

    def subset(self, index: np.ndarray) -> WindowSet:
        """The windows at ``index`` (an integer array)."""
        index = np.asarray(index, dtype=np.int64)
        changes: dict[str, Any] = {}
        for name in self.per_window_fields():
            value = getattr(self, name)
            changes[name] = None if value is None else value[index]
        return replace(self, **changes)

    def followed_by(self, other: WindowSet) -> WindowSet:
        """These windows then ``other``'s, ``other``'s trials numbered after these; labels
        only where both have them. Both must share the rate and the coordinates."""
        for name in ("rate_hz", "balanced", "input_coordinates"):
            if getattr(self, name) != getattr(other, name):
                raise WindowError(
                    f"cannot join windows of different {name}: "
                    f"{getattr(self, name)} and {getattr(other, name)}"
                )
        changes: dict[str, Any] = {}
        for name in self.per_window_fields():
            mine, theirs = getattr(self, name), getattr(other, name)
            if name == "trial":
                theirs = theirs + len(self.trial_names)
            changes[name] = (
                None if mine is None or theirs is None else np.concatenate([mine, theirs])
            )
        return replace(self, **changes, trial_names=self.trial_names + other.trial_names)

    def input_statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation (3 J,) of the input features (SI), std floored at 1e-6."""
        rows = self.inputs.reshape(-1, self.inputs.shape[-1]).astype(np.float64)
        return rows.mean(axis=0), np.maximum(rows.std(axis=0), 1e-6)

    def with_labels(self, labels: np.ndarray) -> WindowSet:
        labels = np.asarray(labels, dtype=np.float32)
        if labels.shape != self.force_gain.shape:
            raise WindowError(
                f"labels have shape {labels.shape}, expected (windows, muscles) = "
                f"{self.force_gain.shape}"
            )
        return replace(self, labels=labels)


def window_ends(n_samples: int, config: WindowConfig) -> np.ndarray:
    """Sample index of the last sample of every window of a trial of ``n_samples``.

    The first window's oldest feature row needs ``DERIVATIVE_TAPS - 1`` samples of history.
    """
    first = config.window + DERIVATIVE_TAPS - 2
    if n_samples <= first:
        return np.zeros(0, dtype=np.int64)
    return np.arange(first, n_samples, config.stride, dtype=np.int64)


def trial_name(trial: LegTrial, index: int) -> str:
    source = trial.source[0] if trial.source else f"trial{index}"
    return f"{source}:{trial.side}:{trial.variant}"


def build_windows(
    trials: list[LegTrial], subject, config: WindowConfig = WindowConfig()
) -> WindowSet:
    """All windows of ``trials`` with their predicted samples' physics (module docstring)."""
    if not trials:
        raise WindowError("no trials to cut into windows")
    rates = {float(t.rate_hz) for t in trials}
    if len(rates) != 1:
        raise WindowError(f"trials must share one sample rate, got {sorted(rates)} Hz")
    rate_hz = rates.pop()
    inputs_index = [COORDINATES.index(c) for c in config.input_coordinates]
    physics_fields = [f.name for f in fields(SamplePhysics)]
    parts: dict[str, list[np.ndarray]] = {
        name: [] for name in WindowSet.per_window_fields() if name != "labels"
    }
    names = []
    for index, trial in enumerate(trials):
        ends = window_ends(trial.n_samples, config)
        if ends.size == 0:
            raise WindowError(
                f"trial {trial_name(trial, index)} has {trial.n_samples} samples at "
                f"{rate_hz:g} Hz; a window needs {config.window + DERIVATIVE_TAPS - 1}"
            )
        # row r of the features belongs to sample r + taps - 1
        features = network_inputs(trial.q[:, inputs_index], rate_hz)
        rows = ends - (DERIVATIVE_TAPS - 1)
        offsets = np.arange(-config.window + 1, 1)
        predicted = ends - config.lookahead
        physics = trial_physics(trial, subject, config.physics)
        parts["inputs"].append(features[rows[:, None] + offsets[None, :]].astype(np.float32))
        for name in physics_fields:
            parts[name].append(getattr(physics, name)[predicted])
        parts["contact"].append(np.asarray(trial.contact, dtype=bool)[predicted])
        parts["time"].append(trial.time[predicted])
        parts["trial"].append(np.full(predicted.size, index, dtype=np.int64))
        names.append(trial_name(trial, index))
    arrays = {name: np.concatenate(values) for name, values in parts.items()}
    for name in physics_fields:
        arrays[name] = arrays[name].astype(np.float32)
    return WindowSet(
        **arrays,
        trial_names=tuple(names),
        rate_hz=rate_hz,
        balanced=config.balanced,
        input_coordinates=config.input_coordinates,
    )


def angle_noise_features(
    noise_rad: torch.Tensor, rate_hz: float, taps: int = DERIVATIVE_TAPS
) -> torch.Tensor:
    """What angle noise adds to windows' inputs: (B, W + taps - 1, J) rad -> (B, W, 3 J).

    ``edge.derivatives.network_inputs`` is linear in the angles (the angle
    itself and two causal FIR filters), so the runtime's features of q + n are
    the features of q plus these features of n: a window's clean ``inputs``
    plus this are the inputs of its angles with noise n added, sample by
    sample over the window's history (the oldest ``taps - 1`` samples only
    enter the first rows' derivatives).
    """
    if noise_rad.ndim != 3 or noise_rad.shape[1] < taps:
        raise WindowError(
            f"angle noise must be (windows, history >= {taps}, joints), "
            f"got {tuple(noise_rad.shape)}"
        )
    n_joints = noise_rad.shape[2]
    w_vel, w_acc = _derivative_stencils(rate_hz, taps, noise_rad.dtype, noise_rad.device)
    stencils = noise_rad.unfold(1, taps, 1)  # (B, W, J, taps), oldest sample first
    features = torch.stack(
        [stencils[..., -1], stencils @ w_vel, stencils @ w_acc],
        dim=-1,
    )  # (B, W, J, FEATURES_PER_JOINT), edge.derivatives.input_feature_names order
    return features.reshape(*stencils.shape[:2], n_joints * FEATURES_PER_JOINT)


@functools.lru_cache(maxsize=8)
def _derivative_stencils(
    rate_hz: float, taps: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The causal velocity and acceleration weights as tensors on ``device``, made once
    rather than copied to the device for every batch."""
    w_vel, w_acc = causal_derivative_weights(rate_hz, taps)
    return (
        torch.as_tensor(w_vel, dtype=dtype, device=device),
        torch.as_tensor(w_acc, dtype=dtype, device=device),
    )


def labels_for_windows(
    windows: WindowSet, trials: list[LegTrial], muscle_names: tuple[str, ...], storages: list
) -> np.ndarray:
    """Reference activations (K, M) at each window's predicted sample, from OpenSim .sto files.

    ``storages``: one ``train.opensim_io.Storage`` per trial (the same object
    may serve both legs of a recording). Columns are the subject's muscle
    names; for a left-leg trial a name ending in ``_r`` is read as its ``_l``
    twin. Linear interpolation in time; samples outside a file's time span
    raise, naming the span.
    """
    if len(storages) != len(trials):
        raise WindowError(f"need one labels file per trial ({len(trials)}), got {len(storages)}")
    labels = np.empty((len(windows), len(muscle_names)), dtype=np.float32)
    for index, (trial, storage) in enumerate(zip(trials, storages)):
        mask = windows.trial == index
        names = [_side_name(name, trial.side) for name in muscle_names]
        missing = [name for name in names if not storage.has_column(name)]
        if missing:
            raise WindowError(
                f"labels file {storage.path} has no column for {', '.join(missing)} "
                f"(needed for the {'left' if trial.side == 'l' else 'right'} leg)"
            )
        times = windows.time[mask].astype(np.float64)
        span = (storage.time[0] - 1e-6, storage.time[-1] + 1e-6)
        if times.size and (times.min() < span[0] or times.max() > span[1]):
            raise WindowError(
                f"labels file {storage.path} covers {storage.time[0]:.3f}-{storage.time[-1]:.3f} s "
                f"but the windows need {times.min():.3f}-{times.max():.3f} s; "
                "trim the trial or give labels over its whole span"
            )
        values = storage.columns_of(names)
        labels[mask] = np.column_stack(
            [np.interp(times, storage.time, values[:, m]) for m in range(len(names))]
        )
    return labels


def _side_name(name: str, side: str) -> str:
    if side == "l" and name.endswith("_r"):
        return name[:-2] + "_l"
    return name
