"""The training data in one stage: recorded trials -> windows -> train and validation sets
-> the tensors the training loop reads.

``build_training_data`` takes the legs of the recorded trials and, optionally, their
reference activations and label-free extra legs (``train.augment``), and returns a
``TrainingData``: every window with its network inputs, physics targets and labels
(``train.windows``), split by time per trial, the extra legs' windows joined to the
training part only. The loop (``train.training_loop``) then reads ``TrainingData.tensors``
and, per batch, ``perturb_inputs``.

Why the split is by time, per trial: the last ``validation_fraction`` of each trial's
windows are held out. Windows of stride 2 and length 20 overlap by 90 %, so a random
split would put a near-copy of every test window in training.

Input noise (``perturb_inputs``): each training batch's joint angles get fresh Gaussian
noise before the causal features are computed, exactly as the runtime computes them from
a noisy encoder (``train.windows.angle_noise_features``); the physics targets keep the
clean non-causal derivatives and validation sees clean inputs. Why: the causal
acceleration amplifies white angle noise (at 100 Hz its 5-tap FIR gives 5345 rad/s^2 of
std per rad of angle noise, the velocity 111 per s), and a network trained on clean
angles alone takes that noise for motion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from calib.subject import Subject
from edge.derivatives import DERIVATIVE_TAPS
from train.augment import augment_trials
from train.fit_config import TrialFiles
from train.opensim_io import Storage
from train.trial import LegTrial, load_trial
from train.windows import (
    WindowConfig,
    WindowSet,
    angle_noise_features,
    build_windows,
    labels_for_windows,
)

LOSS_INPUTS = ("inputs", "required_torque", "moment_arms", "force_gain", "force_passive")
"""The per-window arrays a training step reads (besides ``labels`` where there are some)."""


def load_trials(
    files: list[TrialFiles],
    subject: Subject,
    rate_hz: float,
    sides: tuple[str, ...] = ("r", "l"),
    angles_in_degrees: bool | None = None,
) -> list[list[LegTrial]]:
    """The legs ``sides`` of every trial at ``rate_hz``: one list (in ``sides`` order) per
    trial."""
    return [
        [
            load_trial(f.ik, f.grf, f.loads, subject, rate_hz, side,
                       angles_in_degrees=angles_in_degrees)
            for side in sides
        ]
        for f in files
    ]  # fmt: skip


def augmented(legs: list[LegTrial], variants: int, seed: int, subject: Subject) -> list[LegTrial]:
    """``variants`` label-free variants of each leg (``train.augment``)."""
    if variants == 0:
        return []
    return augment_trials(legs, variants, seed, subject)


def split_by_time(windows: WindowSet, validation_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) window indices: the last fraction of each trial's windows validates."""
    train_index, validation_index = [], []
    for trial in np.unique(windows.trial):
        index = np.flatnonzero(windows.trial == trial)
        index = index[np.argsort(windows.time[index], kind="stable")]
        n_validation = round(validation_fraction * index.size)
        train_index.append(index[: index.size - n_validation])
        validation_index.append(index[index.size - n_validation :])
    return np.concatenate(train_index), np.concatenate(validation_index)


@dataclass(frozen=True, eq=False)
class TrainingData:
    """The windows training reads: ``train`` (the first part of each recorded trial, then
    the extra legs' windows) and ``validation`` (the last part of each recorded trial)."""

    train: WindowSet
    validation: WindowSet

    @property
    def rate_hz(self) -> float:
        return self.validation.rate_hz

    @property
    def balanced(self) -> tuple[str, ...]:
        return self.validation.balanced

    @property
    def trial_names(self) -> tuple[str, ...]:
        """The recorded trials' names (the extra legs' not included)."""
        return self.validation.trial_names

    def tensors(
        self, passive_force: bool, device: torch.device | None = None
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
        """``as_tensors`` of the training windows and of the validation windows (None
        where there are none)."""
        validation = None
        if len(self.validation):
            validation = as_tensors(self.validation, passive_force, device)
        return as_tensors(self.train, passive_force, device), validation


def build_training_data(
    trials: list[LegTrial],
    subject: Subject,
    window_config: WindowConfig,
    validation_fraction: float,
    label_storages: list[Storage] | None = None,
    extra_trials: list[LegTrial] | None = None,
) -> TrainingData:
    """Windows of ``trials`` (with labels from ``label_storages``, one per trial, where
    given) split by time, plus the windows of the label-free ``extra_trials`` in training."""
    windows = build_windows(trials, subject, window_config)
    if label_storages is not None:
        labels = labels_for_windows(windows, trials, subject.muscle_names, label_storages)
        windows = windows.with_labels(labels)
    train_index, validation_index = split_by_time(windows, validation_fraction)
    train = windows.subset(train_index)
    if extra_trials:
        train = train.followed_by(build_windows(extra_trials, subject, window_config))
    return TrainingData(train=train, validation=windows.subset(validation_index))


def as_tensors(
    windows: WindowSet, passive_force: bool = True, device: torch.device | None = None
) -> dict[str, torch.Tensor]:
    """The loss's per-window arrays (``LOSS_INPUTS``, and ``labels`` where there are some)
    as float32 tensors on ``device`` (default the CPU).

    ``passive_force`` False zeroes the passive fibre force P, as OpenSim's static
    optimisation (and ``train-so`` by default) leaves it out; True keeps eq. (18).
    """
    tensors = {
        name: torch.as_tensor(getattr(windows, name), dtype=torch.float32, device=device)
        for name in LOSS_INPUTS
    }
    if not passive_force:
        tensors["force_passive"] = torch.zeros_like(tensors["force_passive"])
    if windows.labels is not None:
        tensors["labels"] = torch.as_tensor(windows.labels, dtype=torch.float32, device=device)
    return tensors


def perturb_inputs(
    batch: dict[str, torch.Tensor],
    noise_deg: float,
    rate_hz: float,
    generator: torch.Generator | None,
) -> dict[str, torch.Tensor]:
    """``batch`` with inputs computed from its angles plus fresh Gaussian noise (std degrees).

    Only ``inputs`` changes (a new tensor); every target is the same tensor as
    in ``batch``. The noise covers each window's whole history of
    W + DERIVATIVE_TAPS - 1 samples (train.windows.angle_noise_features).
    """
    if noise_deg == 0:
        return batch
    b, w, n_features = batch["inputs"].shape
    noise_rad = math.radians(noise_deg) * torch.randn(
        (b, w + DERIVATIVE_TAPS - 1, n_features // 3),
        generator=generator,
        dtype=torch.float64,
        device=batch["inputs"].device,
    )
    change = angle_noise_features(noise_rad, rate_hz).to(batch["inputs"].dtype)
    return {**batch, "inputs": batch["inputs"] + change}
