"""How a network is trained: ``TrainingConfig``, the recorded trials' files, and the merging
of ``train-fit``'s ``--config`` JSON with its flags into a model and a training configuration.

The defaults are the paper's (Section III-C2): AdamW, learning rate 5e-4, weight decay
0.01, cosine annealing down to 10 % of the initial rate, batch 8, 80/20 split, loss
weights w_d = 3, w_p = 1000, w_b = 500 (``train.losses.LossWeights``, the one place they
are set; ``TrainingConfig`` carries them as three numbers so that a ``--config`` file
and the RUN's ``config.json`` name them flatly); but not its 500 epochs: training stops
by the convergence rule (``train.training_loop``), at most after ``epochs`` = 1000.

Choices the paper leaves open that are settings here:

- ``passive_force``: passive fibre force is left out of the loss by default, as
  OpenSim's static optimisation and ``train-so`` leave it out: with a rigid tendon,
  fibres of some of the 43 right-leg muscles are overstretched in walking, and the
  passive force of eq. (18) alone then demands knee torque that no activation can cancel
  (docs/training.md). ``"passive_force": true`` in --config keeps eq. (18) whole.
- ``legs`` and ``augment``: both legs of every trial train, plus ``augment`` label-free
  variants per leg from ``train.augment`` (time-warped speeds and amplitude variation),
  in physics-informed mode only (they have no labels).
- ``input_noise_deg``: Gaussian angle noise on the training inputs
  (``train.dataset.perturb_inputs`` says why), drawn from a generator seeded with
  ``seed`` + the process's rank.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from calib.coordinates import COORDINATES
from edge.derivatives import SAGITTAL_INPUTS
from train.losses import LossWeights
from train.model import ModelConfig
from train.options import (
    EPOCHS,
    LEG_CHOICES,
    LOSS_WEIGHTINGS,
    MIN_IMPROVEMENT,
    MODES,
    PATIENCE,
    PRECISIONS,
    SIDES,
)

LEGS = dict(zip(LEG_CHOICES, (SIDES, SIDES[:1], SIDES[1:])))
"""--legs: which legs of each recorded trial train."""
DEFAULT_LOSS_WEIGHTS = LossWeights()


class FitError(ValueError):
    """Training that cannot start; the message says what to change."""


@dataclass(frozen=True)
class TrainingConfig:
    """How the network is trained (Section III-C2 defaults; module doc)."""

    mode: str = "pi"
    epochs: int = EPOCHS
    batch_size: int = 8
    learning_rate: float = 5e-4
    weight_decay: float = 0.01
    final_learning_rate_fraction: float = 0.1
    validation_fraction: float = 0.2
    seed: int = 0
    rate_hz: float = 100.0
    stride: int = 2
    base_motion: bool = True
    passive_force: bool = False
    augment: int = 0
    weight_dynamics: float = DEFAULT_LOSS_WEIGHTS.dynamics
    weight_effort: float = DEFAULT_LOSS_WEIGHTS.effort
    weight_bounds: float = DEFAULT_LOSS_WEIGHTS.bounds
    checkpoint_every: int = 25
    input_noise_deg: float = 0.0
    """Std (degrees) of the Gaussian angle noise added to training inputs (``train.dataset``)."""
    balance: str = "auto"
    """The coordinates the muscles balance: "auto" (hip flexion, adduction and rotation,
    knee and ankle where every trial holds them, else the sagittal three), "five" or
    "sagittal" (``train.physics_targets.choose_balance``)."""
    patience: int = PATIENCE
    """Epochs over which the validation physics loss must improve (``converged``); 0 = off."""
    min_improvement: float = MIN_IMPROVEMENT
    """The relative improvement of the best validation physics loss ``converged`` asks for."""
    legs: str = "both"
    """Which legs of each recorded trial train: "both", "right" or "left"."""
    precision: str = "fp32"
    """The network's forward pass in training: "fp32", or autocast to "bf16" or "fp16"
    (the physics loss stays fp32; ``train.device``)."""
    loss_weighting: str = "fixed"
    """``train.losses.LOSS_WEIGHTINGS``: "fixed" or "augmented_lagrangian"
    (``train.training_loop``)."""
    multiplier_step: float = 0.1
    """The augmented Lagrangian's per-epoch multiplier step as a fraction of its penalty
    mu = 2 w_d (``train.training_loop``)."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise FitError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise FitError(
                f"epochs and batch size must be >= 1, got {self.epochs}, {self.batch_size}"
            )
        if not self.learning_rate > 0 or self.weight_decay < 0:
            raise FitError("learning rate must be > 0 and weight decay >= 0")
        if not 0 < self.final_learning_rate_fraction <= 1:
            raise FitError("final_learning_rate_fraction must be in (0, 1]")
        if not 0 <= self.validation_fraction < 1:
            raise FitError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if not self.rate_hz > 0:
            raise FitError(f"--rate must be a positive number of Hz, got {self.rate_hz}")
        if self.augment < 0 or self.checkpoint_every < 1:
            raise FitError("augment must be >= 0 and checkpoint_every >= 1")
        if not 0 <= self.input_noise_deg < 90:
            raise FitError(f"input noise must be in [0, 90) degrees, got {self.input_noise_deg}")
        if self.balance not in ("auto", "five", "sagittal"):
            raise FitError(f"balance must be auto, five or sagittal, got {self.balance!r}")
        if self.patience < 0 or not 0 <= self.min_improvement < 1:
            raise FitError(
                f"patience must be >= 0 epochs and min_improvement in [0, 1), got "
                f"{self.patience}, {self.min_improvement}"
            )
        if self.legs not in LEGS:
            raise FitError(f"legs must be one of {', '.join(LEGS)}, got {self.legs!r}")
        if self.precision not in PRECISIONS:
            raise FitError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if not self.multiplier_step > 0:
            raise FitError(f"multiplier_step must be > 0, got {self.multiplier_step}")
        if self.loss_weighting not in LOSS_WEIGHTINGS:
            raise FitError(
                f"loss weighting must be one of {', '.join(LOSS_WEIGHTINGS)}, "
                f"got {self.loss_weighting!r}"
            )

    @property
    def loss_weights(self) -> LossWeights:
        return LossWeights(self.weight_dynamics, self.weight_effort, self.weight_bounds)


@dataclass(frozen=True)
class TrialFiles:
    """One recorded trial: IK, GRF and ExternalLoads files, and optional labels (SO activations)."""

    ik: Path
    grf: Path | None
    loads: Path
    labels: Path | None = None


def configs_from_args(args, n_muscles: int) -> tuple[ModelConfig, TrainingConfig]:
    model_data: dict[str, Any] = {}
    training_data: dict[str, Any] = {}
    if args.config is not None:
        try:
            data = json.loads(args.config.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise FitError(f"--config {args.config}: {exc}") from exc
        unknown = sorted(set(data) - {"model", "training"})
        if unknown:
            raise FitError(
                f"--config {args.config}: unknown sections {unknown}; use model, training"
            )
        model_data = dict(data.get("model", {}))
        training_data = dict(data.get("training", {}))
        known = {f.name for f in fields(TrainingConfig)}
        if set(training_data) - known:
            unknown = sorted(set(training_data) - known)
            raise FitError(f"--config {args.config}: unknown training keys {unknown}")
    model_data["n_muscles"] = n_muscles
    if args.inputs is not None:
        model_data["input_coordinates"] = input_coordinates(args.inputs)
    if args.sagittal:
        training_data["balance"] = "sagittal"
    for flag, key in (("lookahead", "lookahead"), ("architecture", "architecture")):
        if getattr(args, flag) is not None:
            model_data[key] = getattr(args, flag)
    for flag, key in (
        ("mode", "mode"),
        ("epochs", "epochs"),
        ("seed", "seed"),
        ("rate", "rate_hz"),
        ("augment", "augment"),
        ("input_noise_deg", "input_noise_deg"),
        ("patience", "patience"),
        ("legs", "legs"),
        ("precision", "precision"),
        ("loss_weighting", "loss_weighting"),
    ):
        if getattr(args, flag) is not None:
            training_data[key] = getattr(args, flag)
    try:
        return ModelConfig.from_dict(model_data), TrainingConfig(**training_data)
    except (TypeError, ValueError) as exc:
        raise FitError(str(exc)) from exc


def input_coordinates(text: str) -> tuple[str, ...]:
    """``--inputs``: "sagittal", "five" or a comma-separated list of coordinates."""
    named = {"sagittal": SAGITTAL_INPUTS, "five": COORDINATES}
    if text in named:
        return named[text]
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in COORDINATES]
    if unknown or len(names) < 2:
        raise FitError(
            f"--inputs {text!r}: give sagittal, five or at least two of {', '.join(COORDINATES)}"
        )
    return tuple(c for c in COORDINATES if c in names)


def trial_files(args) -> list[TrialFiles]:
    n = len(args.ik)
    for name in ("grf", "loads", "labels"):
        given = getattr(args, name)
        if given is not None and len(given) != n:
            raise FitError(f"give --{name} once per --ik ({n}), got {len(given)}")
    return [
        TrialFiles(
            ik=args.ik[i],
            grf=args.grf[i] if args.grf else None,
            loads=args.loads[i],
            labels=args.labels[i] if args.labels else None,
        )
        for i in range(n)
    ]
