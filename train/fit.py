"""``train-fit``: train PI-MJCA-BiGRU (label-free) or its supervised baseline on OpenSim trials.

One loop a reader can follow: trials -> windows (train.windows) -> split ->
model (train.model) -> per epoch: batches, forward, losses by name
(train.losses), backward, Adam step, cosine schedule, log, checkpoint ->
RUN directory (train.run).

Defaults are the paper's (Section III-C2): Adam, learning rate 5e-4, weight
decay 0.01, cosine annealing down to 10 % of the initial rate, batch 8,
80/20 split, loss weights w_d = 3, w_p = 1000, w_b = 500; but not its 500
epochs: training stops by ``converged`` (the validation physics-informed loss
improved by less than ``min_improvement`` = 1 % over the last ``patience`` = 150
epochs), at most after ``epochs`` = 1000, the cap the cosine schedule spans.
Why these, measured on subject01 (43 muscles, ``scripts/convergence.py``, figures in
the README): the rule stops at epoch 409, in about a third of the cap's time, where
the activations agree with both static optimisations as well as after all 1000
epochs; a patience of 100 epochs stopped at epoch 253, before they had settled
(mean R^2 against our static optimisation 0.79 instead of 0.92).

Time: one step (batch 8, window 20) costs 25-50 ms on one core of this
project's shared 2-core CPU, and an epoch is (windows / 8) steps, so training
time grows linearly with the recorded time: a 2 s trial at 100 Hz gives 178
windows (both legs, stride 2), 18 training steps per epoch with the 80/20 split.
One thread per process by default (``--threads``): measured under load, a
second thread made each step ten times slower, not faster.

Choices the paper leaves open:
- Weight decay is decoupled (AdamW). Coupled L2 decay inside Adam would weigh
  0.01 * |w|^2 against a loss whose scale differs by six orders of magnitude
  between the physics-informed loss ((N m)^2) and the supervised MSE; decoupled
  decay shrinks the weights by the same 0.01 * lr per step in both modes.
- The 80/20 split is by time, per trial: the last 20 % of each trial's
  windows are held out. Windows of stride 2 and length 20 overlap by 90 %,
  so a random split would put a near-copy of every test window in training.
- The schedule steps once per epoch (cosine over ``epochs``).
- The device (``train.device``): the model, every window's inputs and physics
  targets go to it once; an epoch then runs without a host-device copy per step
  (the batch index is on the device, the logged losses are summed there and read
  once per epoch). ``precision`` bf16/fp16 runs the network's forward pass under
  autocast and the physics-informed loss in fp32 (``train.device`` says why);
  validation and the final metrics run in fp32, as the exported network does.
- Under ``torchrun --nproc_per_node=K`` (DDP; NCCL between GPUs, one per process,
  gloo between CPUs) each process takes ``batch_size`` windows per step from a
  ``DistributedSampler`` shard, so the effective batch is K * batch_size; rank 0
  alone writes the RUN. The learning rate is not scaled with K: AdamW divides each
  step by the gradient's running RMS, so the step size does not grow with a less noisy
  gradient the way SGD's linear scaling rule assumes; an epoch has K times fewer steps.
- Passive fibre force is left out of the loss by default (``passive_force``),
  as OpenSim's static optimisation and ``train-so`` leave it out: with a rigid
  tendon, fibres of some of the 43 right-leg muscles are overstretched in
  walking, and the passive force of eq. (18) alone then demands up to 227 N m of
  knee torque that no activation can cancel (measured with train-so --passive on
  subject01). ``"passive_force": true`` in --config keeps eq. (18) whole.
- Input noise (``--input-noise-deg``, default 0): each training batch's
  joint angles get fresh Gaussian noise (std in degrees, drawn from a
  generator seeded with ``seed`` + rank) before the causal features are
  computed, exactly as the runtime computes them from a noisy encoder
  (``train.windows.angle_noise_features``); the physics targets keep the
  clean non-causal derivatives and validation sees clean inputs. Why: the
  causal acceleration amplifies white angle noise (at 100 Hz its 5-tap FIR
  gives 5345 rad/s^2 of std per rad, so 0.1 degree becomes 9.3 rad/s^2, the
  velocity 111 per s, 0.19 rad/s), and a network trained on clean angles
  alone takes that noise for motion.
- Data beyond one trial: both legs of every trial, plus ``--augment K``
  label-free variants per leg from ``train.augment`` (time-warped speeds and
  amplitude variation), used in physics-informed mode only (they have no labels).
- Loss weighting (``--loss-weighting``): "fixed" (the paper's w_d, w_p, w_b) or
  "augmented_lagrangian" (``train.losses``' module doc): every training window
  carries a multiplier per balanced coordinate, raised after each epoch from the
  whole training set's torque residual in eval mode (one extra forward pass per
  epoch); the multipliers are saved in the checkpoint. Validation windows have no
  multipliers: their ``total`` is eq. (15) with the fixed weights. The step is
  ``multiplier_step`` = 0.1 of the penalty mu, not mu itself (the textbook step after
  an inner minimisation solved exactly): one epoch of Adam leaves the network far from
  the inner optimum, so a full step raises the multipliers faster than the network can
  follow. Measured on the tests' synthetic trial, not on subject01 (30 epochs, the
  share of the required torque balanced: fixed weights 0.77, step 1.0 0.24, 0.1 0.80,
  0.01 0.78).
"""

from __future__ import annotations

import copy
import json
import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from calib.coordinates import COORDINATES
from calib.subject import Subject, SubjectError, load_subject
from edge.derivatives import DERIVATIVE_TAPS, SAGITTAL_INPUTS
from train import losses
from train.augment import augment_trials
from train.cli import angles_in_degrees
from train.data_checks import DataError, check_duration, check_trial_files
from train.device import (
    PRECISIONS,
    DeviceError,
    autocast,
    check_precision,
    describe_device,
    grad_scaler,
    no_tf32,
    precision_line,
    process_group_backend,
    resolve_device,
)
from train.metrics import score_samples
from train.model import ModelConfig, build_model, clamped_activation
from train.opensim_io import ExternalLoadsError, StorageError, read_storage
from train.physics_targets import PhysicsError, choose_balance
from train.run import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    LOSSES_PLOT_FILE,
    METRICS_FILE,
    NORMALIZATION_FILE,
    SUBJECT_FILE,
    WEIGHTS_FILE,
    RunError,
    save_run,
)
from train.trial import LegTrial, TrialError, load_trial
from train.windows import (
    WindowConfig,
    WindowError,
    WindowSet,
    angle_noise_features,
    build_windows,
    labels_for_windows,
    window_ends,
)

MODES = ("pi", "supervised")
HISTORY_FILE = "history.json"
LEGS = {"both": ("r", "l"), "right": ("r",), "left": ("l",)}
"""--legs: which legs of each recorded trial train."""
RUN_FILES = (
    CONFIG_FILE, SUBJECT_FILE, WEIGHTS_FILE, NORMALIZATION_FILE, METRICS_FILE,
    LOSSES_PLOT_FILE, CHECKPOINT_FILE, HISTORY_FILE,
)  # fmt: skip
"""What a RUN directory holds (train.run), all of which --overwrite replaces."""


class FitError(ValueError):
    """Training that cannot start; the message says what to change."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training, after the last completed epoch's checkpoint was written."""

    def __init__(self, epoch: int, epochs: int, checkpoint: Path) -> None:
        super().__init__(
            f"interrupted during epoch {epoch + 1} of at most {epochs}; the state after "
            f"epoch {epoch} is in {checkpoint}: continue with the same arguments and --resume"
        )
        self.epoch = epoch
        self.checkpoint = checkpoint


@dataclass(frozen=True)
class TrainingConfig:
    """How the network is trained (Section III-C2 defaults)."""

    mode: str = "pi"
    epochs: int = 1000
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
    weight_dynamics: float = 3.0
    weight_effort: float = 1000.0
    weight_bounds: float = 500.0
    checkpoint_every: int = 25
    input_noise_deg: float = 0.0
    """Std (degrees) of the Gaussian angle noise added to training inputs (module doc)."""
    balance: str = "auto"
    """The coordinates the muscles balance: "auto" (hip flexion, adduction and rotation,
    knee and ankle where every trial holds them, else the sagittal three), "five" or
    "sagittal" (``train.physics_targets.choose_balance``)."""
    patience: int = 150
    """Epochs over which the validation physics loss must improve (``converged``); 0 = off."""
    min_improvement: float = 0.01
    """The relative improvement of the best validation physics loss ``converged`` asks for."""
    legs: str = "both"
    """Which legs of each recorded trial train: "both", "right" or "left"."""
    precision: str = "fp32"
    """The network's forward pass in training: "fp32", or autocast to "bf16" or "fp16"
    (the physics loss stays fp32; ``train.device``)."""
    loss_weighting: str = "fixed"
    """``train.losses.LOSS_WEIGHTINGS``: "fixed" or "augmented_lagrangian" (module doc)."""
    multiplier_step: float = 0.1
    """The augmented Lagrangian's per-epoch multiplier step as a fraction of its penalty
    mu = 2 w_d (module doc)."""

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
        if self.loss_weighting not in losses.LOSS_WEIGHTINGS:
            raise FitError(
                f"loss weighting must be one of {', '.join(losses.LOSS_WEIGHTINGS)}, "
                f"got {self.loss_weighting!r}"
            )

    @property
    def loss_weights(self) -> losses.LossWeights:
        return losses.LossWeights(self.weight_dynamics, self.weight_effort, self.weight_bounds)


@dataclass(frozen=True)
class TrialFiles:
    """One recorded trial: IK, GRF and ExternalLoads files, and optional labels (SO activations)."""

    ik: Path
    grf: Path | None
    loads: Path
    labels: Path | None = None


@dataclass(frozen=True, eq=False)
class FitResult:
    """What ``fit`` returns: the RUN directory, its metrics and the wall time in s."""

    directory: Path
    metrics: dict[str, Any]
    seconds: float


# --- data ---------------------------------------------------------------------------------


def load_trials(
    files: list[TrialFiles],
    subject: Subject,
    rate_hz: float,
    sides: tuple[str, ...] = ("r", "l"),
    angles_in_degrees: bool | None = None,
) -> list[list[LegTrial]]:
    """The legs ``sides`` of every trial, at ``rate_hz``; one list (in ``sides`` order) per trial."""
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


def as_tensors(
    windows: WindowSet, passive_force: bool = True, device: torch.device | None = None
) -> dict[str, torch.Tensor]:
    """The loss's per-window arrays as float32 tensors on ``device`` (default the CPU).

    ``passive_force`` False zeroes the passive fibre force P, as OpenSim's static
    optimisation (and ``train-so`` by default) leaves it out; True keeps eq. (18).
    """
    names = ["inputs", "required_torque", "moment_arms", "force_gain", "force_passive"]
    tensors = {
        name: torch.as_tensor(getattr(windows, name), dtype=torch.float32, device=device)
        for name in names
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
    generator: torch.Generator,
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


# --- losses by name -----------------------------------------------------------------------


def batch_losses(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], config: TrainingConfig
) -> dict[str, torch.Tensor]:
    """Forward one batch; ``total`` is what is minimised, the rest is logged.

    A "clamped" network (``train.model``) returns its raw output in training mode: the
    physics sees its clamp into the bounds and L_b the raw output. The forward pass runs
    in ``config.precision``, the losses in fp32 (``train.device``).
    """
    with autocast(config.precision, batch["inputs"].device):
        output = model(batch["inputs"])
    output = output.float()
    clamped = getattr(model, "module", model).config.output == "clamped"
    activation = clamped_activation(output) if clamped else output
    parts = losses.physics_informed_loss(
        activation,
        batch["force_gain"],
        batch["force_passive"],
        batch["moment_arms"],
        batch["required_torque"],
        config.loss_weights,
        bounded=output if clamped else None,
        multipliers=batch.get("multipliers"),
    )
    # The labels lie inside the bounds: the raw output fits them without a clamp's dead zone.
    if config.mode == "supervised":
        parts["physics"] = parts["total"]
        parts["total"] = losses.supervised_loss(output, batch["labels"])
    elif "labels" in batch:
        parts["supervised"] = losses.supervised_loss(output, batch["labels"])
    return parts


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, tensors: dict[str, torch.Tensor], config: TrainingConfig
) -> tuple[dict[str, float], np.ndarray]:
    """Mean loss components over a whole set (eval mode, fp32) and the predicted activations."""
    was_training = model.training
    model.eval()
    with no_tf32(tensors["inputs"].device):
        parts = batch_losses(model, tensors, replace(config, precision="fp32"))
        activation = model(tensors["inputs"]).cpu().numpy()
    model.train(was_training)
    return {k: float(v) for k, v in parts.items()}, activation


@torch.no_grad()
def raise_multipliers(
    model: torch.nn.Module, tensors: dict[str, torch.Tensor], config: TrainingConfig
) -> None:
    """The augmented Lagrangian's update of ``tensors["multipliers"]`` (in place) from the
    torque residual of every window of ``tensors`` in eval mode (``losses.updated_multipliers``)."""
    was_training = model.training
    model.eval()
    activation = model(tensors["inputs"])
    model.train(was_training)
    forces = losses.muscle_forces(activation, tensors["force_gain"], tensors["force_passive"])
    residual = losses.muscle_torques(forces, tensors["moment_arms"]) - tensors["required_torque"]
    step = config.multiplier_step * 2.0 * config.weight_dynamics
    tensors["multipliers"].copy_(losses.updated_multipliers(tensors["multipliers"], residual, step))


def activation_scores(labels: np.ndarray, activation: np.ndarray, names) -> dict[str, Any]:
    """R^2, r and NRMSE per muscle (``train.metrics.score_samples``) as JSON-ready data."""
    return score_samples(labels, activation, tuple(names)).to_dict()


# --- distributed --------------------------------------------------------------------------


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> tuple[int, int, int]:
    """(rank, local rank, world size) from torchrun's environment; (0, 0, 1) without it."""
    return tuple(int(os.environ.get(name, default)) for name, default in (
        ("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"),
    ))  # fmt: skip


def training_device(requested: str | torch.device = "auto") -> torch.device:
    """The device this process trains on (``train.device.resolve_device``; under torchrun
    the GPU of its LOCAL_RANK)."""
    _, local_rank, world_size = launched_by_torchrun()
    return resolve_device(requested, local_rank, world_size)


def init_distributed(device: torch.device) -> Distributed:
    """Join the process group when started by torchrun (WORLD_SIZE > 1): NCCL for
    processes on GPUs (each on its own, set current first), gloo on CPUs."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=process_group_backend(device))
    return Distributed(rank=dist.get_rank(), world_size=dist.get_world_size())


def epoch_means(sums: dict[str, torch.Tensor], world: Distributed) -> dict[str, float]:
    """Per-process loss means (0-dim tensors on the training device) averaged over the
    processes and read to the host in one copy."""
    keys = sorted(sums)
    values = torch.stack([sums[k].to(torch.float64) for k in keys])
    if world.world_size > 1:
        dist.all_reduce(values)
        values = values / world.world_size
    return dict(zip(keys, values.tolist()))


def effective_batch_line(config: TrainingConfig, world: Distributed) -> str:
    """The effective batch and the learning-rate rule, as train-fit prints them."""
    processes = f"{world.world_size} processes" if world.world_size > 1 else "1 process"
    return (
        f"train-fit: effective batch {processes} x {config.batch_size} = "
        f"{world.world_size * config.batch_size} windows per step (gradients averaged); "
        f"learning rate {config.learning_rate:g} whatever the number of processes (AdamW: "
        "not scaled with the batch)"
    )


# --- the loop -----------------------------------------------------------------------------


def fit(
    subject: Subject,
    trials: list[LegTrial],
    out: str | Path,
    model_config: ModelConfig,
    config: TrainingConfig = TrainingConfig(),
    label_storages: list | None = None,
    resume: bool = False,
    progress: bool = True,
    extra_trials: list[LegTrial] | None = None,
    threads: int = 1,
    overwrite: bool = False,
    interrupt: InterruptCheckpoint | None = None,
    device: str | torch.device = "auto",
) -> FitResult:
    """Train on ``trials`` (+ label-free ``extra_trials``) and write the RUN to ``out``.

    ``label_storages``: per trial, an OpenSim storage of reference activations
    (columns named like the subject's muscles), or None. Supervised mode needs
    them; physics-informed mode uses them only for metrics. An ``out`` that holds
    a run is refused unless ``resume`` (continue it) or ``overwrite`` (its files
    are deleted once training is about to start). Training stops at
    ``config.epochs`` or earlier where ``converged``. With ``interrupt`` (and inside
    it), Ctrl-C writes the last completed epoch's checkpoint and raises
    ``TrainingInterrupted``. ``device``: "auto", "cpu", "cuda", "cuda:N" or a
    torch.device (``train.device.resolve_device``).
    """
    check_run_directory(out, resume, overwrite)
    device = training_device(device)
    check_precision(config.precision, device)
    world = init_distributed(device)
    torch.set_num_threads(threads)
    started = time.perf_counter()
    out = Path(out)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    if model_config.n_muscles != len(subject.muscles):
        raise FitError(
            f"model config has {model_config.n_muscles} muscles, the subject {len(subject.muscles)}"
        )
    balanced, reason = choose_balance(list(trials) + list(extra_trials or []), config.balance)
    if world.is_main:
        print(f"train-fit: {reason}", flush=True)
    window_config = WindowConfig(
        window=model_config.window,
        stride=config.stride,
        lookahead=model_config.lookahead,
        base_motion=config.base_motion,
        balanced=balanced,
        input_coordinates=model_config.input_coordinates,
    )
    windows = build_windows(trials, subject, window_config)
    if label_storages is not None:
        names = subject.muscle_names
        windows = windows.with_labels(labels_for_windows(windows, trials, names, label_storages))
    elif config.mode == "supervised":
        raise FitError("supervised training needs --labels (reference activations, .sto)")
    train_index, validation_index = split_by_time(windows, config.validation_fraction)
    train_set, validation_set = windows.subset(train_index), windows.subset(validation_index)
    if extra_trials:
        if config.mode == "supervised":
            raise FitError("augmented trials carry no labels: use --augment only with --mode pi")
        train_set = _concatenate(train_set, build_windows(extra_trials, subject, window_config))
    if len(train_set) < config.batch_size:
        raise FitError(
            f"only {len(train_set)} training windows for a batch of {config.batch_size}: "
            "give longer or more trials, or a smaller batch"
        )
    mean, std = train_set.input_statistics()
    model = build_model(model_config, mean, std).to(device)
    train_tensors = as_tensors(train_set, config.passive_force, device)
    if config.mode == "pi" and config.loss_weighting == "augmented_lagrangian":
        train_tensors["multipliers"] = torch.zeros_like(train_tensors["required_torque"])
    validation_tensors = (
        as_tensors(validation_set, config.passive_force, device) if len(validation_set) else None
    )

    optimizer = make_optimizer(model, config)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer,
        T_max=config.epochs,
        eta_min=config.learning_rate * config.final_learning_rate_fraction,
    )
    history: list[dict[str, float]] = []
    first_epoch = 0
    checkpoint_path = out / CHECKPOINT_FILE
    if resume:
        first_epoch, history = _load_checkpoint(
            checkpoint_path, model, optimizer, schedule, config, train_tensors
        )
    trained = model
    if world.world_size > 1:
        trained = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    sampler = DistributedSampler(
        range(len(train_set)),
        num_replicas=world.world_size,
        rank=world.rank,
        shuffle=True,
        seed=config.seed,
    )
    steps = math.ceil(len(sampler) / config.batch_size)
    if world.is_main:
        if overwrite:
            clear_run_directory(out)
        out.mkdir(parents=True, exist_ok=True)
        print(
            f"train-fit: {config.mode} {model_config.architecture}, {len(train_set)} training / "
            f"{len(validation_set)} validation windows at {windows.rate_hz:g} Hz, "
            f"{len(subject.muscles)} muscles, inputs {', '.join(model_config.input_coordinates)}, "
            f"{config.epochs} epochs x {steps} steps"
            + (
                f", {world.world_size} processes ({dist.get_backend()})"
                if world.world_size > 1
                else ""
            )
            + f"; on {device}, {precision_line(config.precision)}",
            flush=True,
        )
        print(effective_batch_line(config, world), flush=True)
    bar = tqdm(
        range(first_epoch, config.epochs),
        initial=first_epoch,
        total=config.epochs,
        desc="train-fit",
        unit="epoch",
        disable=not (progress and world.is_main),
        dynamic_ncols=True,
    )
    noise = None
    if config.input_noise_deg > 0:
        noise = torch.Generator(device=device).manual_seed(config.seed + world.rank)
    scaler = grad_scaler(config.precision, device)
    if interrupt is not None:
        interrupt.bind(
            checkpoint_path, model, optimizer, schedule, config, world.is_main, train_tensors
        )
        interrupt.record(first_epoch, history)
    stopped = f"the cap of {config.epochs} epochs"
    trained.train()
    for epoch in bar:
        epoch_started = time.perf_counter()
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler), dtype=torch.int64, device=device)
        sums = train_epoch(trained, train_tensors, order, optimizer, scaler, config, noise,
                           windows.rate_hz)  # fmt: skip
        schedule.step()
        record = epoch_means({f"train_{k}": v for k, v in sums.items()}, world)
        if "multipliers" in train_tensors:
            raise_multipliers(model, train_tensors, config)
            record["multiplier_rms"] = float(train_tensors["multipliers"].pow(2).mean().sqrt())
        if validation_tensors is not None:
            validation, _ = evaluate(model, validation_tensors, config)
            record.update({f"validation_{k}": v for k, v in validation.items()})
        record["epoch"] = epoch + 1
        record["learning_rate"] = schedule.get_last_lr()[0]
        record["seconds"] = time.perf_counter() - epoch_started
        history.append(record)
        bar.set_postfix(_postfix(record, config.mode), refresh=False)
        stop = converged(history, config)
        if world.is_main and (
            (epoch + 1) % config.checkpoint_every == 0 or epoch + 1 == config.epochs or stop
        ):
            _save_checkpoint(
                checkpoint_path, model, optimizer, schedule, epoch + 1, history, config,
                train_tensors,
            )  # fmt: skip
        if interrupt is not None:
            interrupt.record(epoch + 1, history)
        if stop:
            stopped = convergence_reason(history, config)
            break
    bar.close()

    seconds = time.perf_counter() - started
    metrics = _final_metrics(model, train_tensors, validation_tensors, windows, config, subject)
    metrics.update(
        {
            "training_seconds": seconds,
            "epochs": len(history),
            "epochs_cap": config.epochs,
            "stopped_by": stopped,
            "processes": world.world_size,
            "device": describe_device(device),
            "precision": config.precision,
            "windows": {"train": len(train_set), "validation": len(validation_set)},
            "trials": list(windows.trial_names),
            "balanced_coordinates": list(balanced),
            "input_coordinates": list(model_config.input_coordinates),
        }
    )
    if world.is_main:
        save_run(
            out,
            model,
            subject,
            windows.rate_hz,
            training={**asdict(config), "window": asdict(window_config)},
            metrics=metrics,
        )
        (out / HISTORY_FILE).write_text(json.dumps(history, indent=1) + "\n")
        plot_losses(history, out / LOSSES_PLOT_FILE)
        print(training_summary(metrics, out), flush=True)
    if world.world_size > 1:
        dist.barrier()
    return FitResult(directory=out, metrics=metrics, seconds=seconds)


def train_epoch(
    model: torch.nn.Module,
    tensors: dict[str, torch.Tensor],
    order: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    config: TrainingConfig,
    noise: torch.Generator | None = None,
    rate_hz: float = 100.0,
) -> dict[str, torch.Tensor]:
    """One pass over the windows ``order`` lists, ``config.batch_size`` per step: forward,
    losses by name, backward, optimiser step. Returns each logged loss's mean over the
    steps as a 0-dim tensor on the windows' device.

    ``tensors``, ``order``, the model and ``noise`` live on one device and nothing here
    copies to or from the host: no ``.item()``, no tensor made from host data per step.
    """
    steps = math.ceil(order.numel() / config.batch_size)
    sums: dict[str, torch.Tensor] = {}
    with no_tf32(order.device):
        for step in range(steps):
            index = order[step * config.batch_size : (step + 1) * config.batch_size]
            batch = {name: tensor[index] for name, tensor in tensors.items()}
            batch = perturb_inputs(batch, config.input_noise_deg, rate_hz, noise)
            parts = batch_losses(model, batch, config)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(parts["total"]).backward()
            scaler.step(optimizer)
            scaler.update()
            for name, value in parts.items():
                sums[name] = sums.get(name, 0.0) + value.detach().to(torch.float64)
    return {name: total / steps for name, total in sums.items()}


# --- the run directory, interruption, convergence, the summary ------------------------------


def check_run_directory(out: str | Path, resume: bool, overwrite: bool) -> None:
    """Refuse to train into a directory that holds a run unless told what to do with it."""
    out = Path(out)
    if resume and overwrite:
        raise FitError("give --resume (continue the run in --out) or --overwrite, not both")
    existing = [name for name in RUN_FILES if (out / name).exists()]
    if existing and not (resume or overwrite):
        raise FitError(
            f"{out} already holds a training run ({', '.join(existing)}): pass --resume to "
            "continue it, --overwrite to replace it, or choose another --out"
        )
    if out.exists() and not out.is_dir():
        raise FitError(f"--out {out} is a file, not a directory")


def clear_run_directory(out: Path) -> None:
    """Delete the files of a previous run in ``out`` (``RUN_FILES``), nothing else."""
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)


class InterruptCheckpoint:
    """Ctrl-C during training writes the state after the last completed epoch as the
    checkpoint, so that ``--resume`` continues exactly where a run that was not
    interrupted would be.

    A context manager around ``fit`` (``with InterruptCheckpoint() as interrupt:
    fit(..., interrupt=interrupt)``): inside it (in the main thread) SIGINT runs a handler
    that writes the state ``fit`` last recorded (a copy in memory at every epoch's end:
    this network's state is small), where ``fit`` says this process owns the RUN, and
    raises ``TrainingInterrupted`` wherever in the epoch the signal arrived; before
    training starts it raises KeyboardInterrupt as usual. Leaving it restores the
    previous handler.
    """

    def __init__(self) -> None:
        self.previous = None
        self.parts: tuple | None = None
        self.state: dict[str, Any] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._interrupted)
        return self

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None

    def bind(
        self, path: Path, model, optimizer, schedule, config: TrainingConfig, write: bool,
        tensors: dict[str, torch.Tensor] | None = None,
    ) -> None:  # fmt: skip
        """What to save and where: called by ``fit`` once training is set up."""
        self.parts = (path, model, optimizer, schedule, config, write, tensors)

    def record(self, epoch: int, history: list[dict[str, float]]) -> None:
        _, model, optimizer, schedule, config, _, tensors = self.parts
        state = _checkpoint_state(model, optimizer, schedule, epoch, history, config, tensors)
        self.state = copy.deepcopy(state)

    def _interrupted(self, signum, frame) -> None:
        if self.parts is None or not self.state:
            raise KeyboardInterrupt
        path, _, _, _, config, write, _ = self.parts
        if write:
            _write_checkpoint(path, self.state)
        raise TrainingInterrupted(self.state["epoch"], config.epochs, path)


def physics_loss_key(history: list[dict[str, float]], mode: str) -> str:
    """The logged physics-informed loss ``converged`` watches: the validation set's where
    there is one, else the training set's."""
    name = "total" if mode == "pi" else "physics"
    return f"validation_{name}" if f"validation_{name}" in history[-1] else f"train_{name}"


def converged(history: list[dict[str, float]], config: TrainingConfig) -> bool:
    """True when the last ``config.patience`` epochs lowered the best physics loss
    (``physics_loss_key``) by less than ``config.min_improvement`` of it: the best of
    those epochs > (1 - min_improvement) x the best before them. Never with patience 0."""
    if config.patience == 0 or len(history) <= config.patience:
        return False
    key = physics_loss_key(history, config.mode)
    values = [record[key] for record in history]
    best_before = min(values[: -config.patience])
    return min(values[-config.patience :]) > (1.0 - config.min_improvement) * best_before


def convergence_reason(history: list[dict[str, float]], config: TrainingConfig) -> str:
    key = physics_loss_key(history, config.mode)
    return (
        f"convergence at epoch {len(history)}: {key.replace('_', ' ')} improved by less than "
        f"{100 * config.min_improvement:g} % over the last {config.patience} epochs"
    )


def torque_balance(torque: np.ndarray, required: np.ndarray, names: tuple[str, ...]) -> dict:
    """How well the muscles' torque (K, C) N m meets the required torque (K, C), per coordinate.

    ``rmse_nm``; ``peak_nm`` the largest |required|; ``rmse_percent_of_peak``;
    ``balanced_share`` = 1 - sum |required - torque| / sum |required| (1: all of it
    balanced, 0: no better than no muscle torque at all), per coordinate and ``all``.
    """
    residual = np.abs(required - torque)
    rmse = np.sqrt(np.mean(residual**2, axis=0))
    peak = np.abs(required).max(axis=0)
    demand = np.abs(required).sum(axis=0)
    share = 1.0 - residual.sum(axis=0) / np.where(demand > 0, demand, 1.0)
    per = {
        name: {
            "rmse_nm": float(rmse[j]),
            "peak_nm": float(peak[j]),
            "rmse_percent_of_peak": float(100 * rmse[j] / peak[j]) if peak[j] > 0 else None,
            "balanced_share": float(share[j]),
        }
        for j, name in enumerate(names)
    }
    total = float(np.abs(required).sum())
    per["all"] = {"balanced_share": 1.0 - float(residual.sum()) / total if total > 0 else None}
    return per


def training_summary(metrics: dict[str, Any], out: Path) -> str:
    """The end of a run in a few lines: time, why it stopped, the torque balance, the files."""
    name = "validation" if "validation" in metrics else "train"
    balance = metrics[name]["torque_balance"]
    width = max(len("coordinate"), *(len(c) for c in balance))
    done = f"{metrics['training_seconds']:.1f} s, {metrics['epochs']} epochs"
    lines = [
        f"train-fit: {done}, stopped by {metrics['stopped_by']}",
        f"torque balance on the {name} windows"
        + (" (the last part of each trial, held out)" if name == "validation" else "")
        + ":",
        f"  {'coordinate':<{width}}  {'RMSE N m':>9}  {'% of peak':>9}  {'balanced':>8}",
    ]
    for coordinate, entry in balance.items():
        share = entry["balanced_share"]
        share_text = "-" if share is None else f"{100 * share:.1f} %"
        if coordinate == "all":
            lines.append(f"  {'all':<{width}}  {'':>9}  {'':>9}  {share_text:>8}")
            continue
        percent = entry["rmse_percent_of_peak"]
        lines.append(
            f"  {coordinate:<{width}}  {entry['rmse_nm']:>9.2f}  "
            f"{'-' if percent is None else f'{percent:.1f} %':>9}  {share_text:>8}"
        )
    lines.append("  (balanced = 1 - sum |required - muscle torque| / sum |required torque|)")
    lines.append(f"loss plot: {out / LOSSES_PLOT_FILE}; run: {out}")
    return "\n".join(lines)


def make_optimizer(model: torch.nn.Module, config: TrainingConfig) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay, see the module doc); the fused kernel where torch has it.

    The fused CPU kernel (torch >= 2.4) halves the step time of this small network; on
    CUDA it also takes fp16's loss scale without a host round trip. Other devices (the
    meta device of the tests) take the plain one.
    """
    options = {"lr": config.learning_rate, "weight_decay": config.weight_decay}
    fused = next(model.parameters()).device.type in ("cpu", "cuda")
    try:
        return torch.optim.AdamW(model.parameters(), fused=fused, **options)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(model.parameters(), **options)


def _concatenate(a: WindowSet, b: WindowSet) -> WindowSet:
    """Windows of ``a`` then ``b`` (label-free), ``b``'s trial indices shifted after ``a``'s."""
    names = (
        "inputs", "q", "qd", "qdd", "required_torque", "moment_arms",
        "force_gain", "force_passive", "contact", "time",
    )  # fmt: skip
    arrays = {name: np.concatenate([getattr(a, name), getattr(b, name)]) for name in names}
    arrays["trial"] = np.concatenate([a.trial, b.trial + len(a.trial_names)])
    return WindowSet(
        **arrays,
        trial_names=a.trial_names + b.trial_names,
        rate_hz=a.rate_hz,
        balanced=a.balanced,
        input_coordinates=a.input_coordinates,
        labels=None,
    )


def _postfix(record: dict[str, float], mode: str) -> dict[str, str]:
    keys = ["total", "dynamics", "effort", "bounds"] + (["physics"] if mode == "supervised" else [])
    shown = {k[:3] if k != "total" else "loss": f"{record[f'train_{k}']:.3g}" for k in keys}
    if "validation_total" in record:
        shown["val"] = f"{record['validation_total']:.3g}"
    return shown


def _final_metrics(
    model, train_tensors, validation_tensors, windows: WindowSet, config: TrainingConfig, subject
) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for name, tensors in (("train", train_tensors), ("validation", validation_tensors)):
        if tensors is None:
            continue
        parts, activation = evaluate(model, tensors, config)
        device = tensors["force_gain"].device
        forces = losses.muscle_forces(
            torch.as_tensor(activation, device=device),
            tensors["force_gain"],
            tensors["force_passive"],
        )
        torque = losses.muscle_torques(forces, tensors["moment_arms"])
        required = tensors["required_torque"].cpu().numpy().astype(np.float64)
        names = windows.balanced
        balance = torque_balance(torque.cpu().numpy().astype(np.float64), required, names)
        metrics[name] = {
            "losses": parts,
            "torque_rmse_nm": {c: balance[c]["rmse_nm"] for c in names},
            "torque_balance": balance,
            "activation_range": [float(activation.min()), float(activation.max())],
        }
        if "labels" in tensors:
            metrics[name]["activation"] = activation_scores(
                tensors["labels"].cpu().numpy(), activation, subject.muscle_names
            )
    return metrics


def _save_checkpoint(path, model, optimizer, schedule, epoch, history, config, tensors) -> None:
    state = _checkpoint_state(model, optimizer, schedule, epoch, history, config, tensors)
    _write_checkpoint(path, state)


def _checkpoint_state(
    model, optimizer, schedule, epoch, history, config, tensors=None
) -> dict[str, Any]:
    """What a checkpoint holds; the augmented Lagrangian's multipliers where ``tensors`` has
    them, and the GPU's random state on a GPU."""
    state = {} if tensors is None or "multipliers" not in tensors else {
        "multipliers": tensors["multipliers"].clone()
    }  # fmt: skip
    state |= {
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "history": json.dumps(history),
        "training": json.dumps(asdict(config)),
        "torch_rng": torch.get_rng_state(),
    }
    device = next(model.parameters()).device
    if device.type == "cuda":  # dropout's stream on the GPU, for an exact resume there
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    return state


def _write_checkpoint(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _load_checkpoint(path, model, optimizer, schedule, config, tensors) -> tuple[int, list]:
    if not path.is_file():
        raise FitError(f"--resume: no checkpoint at {path}; start without --resume")
    # Tensors saved on any GPU load on the CPU first; load_state_dict then copies them to
    # wherever the model and optimiser live now.
    state = torch.load(path, map_location="cpu", weights_only=True)
    saved = json.loads(state["training"])
    kept = ("mode", "epochs", "learning_rate", "seed", "rate_hz", "batch_size", "loss_weighting")
    changed = {k for k in kept if saved.get(k, "fixed") != getattr(config, k)}
    if changed:
        raise FitError(
            f"--resume: the checkpoint was trained with different {', '.join(sorted(changed))}; "
            "resume with the same settings or start a new --out"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    torch.set_rng_state(state["torch_rng"])
    device = next(model.parameters()).device
    if device.type == "cuda" and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    if "multipliers" in tensors:
        tensors["multipliers"].copy_(state["multipliers"])
    return int(state["epoch"]), json.loads(state["history"])


def plot_losses(history: list[dict[str, float]], path: Path) -> None:
    """Loss components (train solid, validation dashed) per epoch, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    names = [k[len("train_") :] for k in history[0] if k.startswith("train_")]
    figure, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.0), squeeze=False)
    epochs = [r["epoch"] for r in history]
    for axis, name in zip(axes[0], names):
        axis.plot(epochs, [r[f"train_{name}"] for r in history], label="train")
        if f"validation_{name}" in history[0]:
            axis.plot(epochs, [r[f"validation_{name}"] for r in history], "--", label="validation")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        if all(r[f"train_{name}"] > 0 for r in history):
            axis.set_yscale("log")
    axes[0][0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


# --- command line -------------------------------------------------------------------------


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
            raise FitError(
                f"--config {args.config}: unknown training keys {sorted(set(training_data) - known)}"
            )
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


def run_cli(args) -> FitResult:
    """``train-fit``'s work from its parsed arguments (``train.cli.fit``): check the files,
    say in one line per trial what of it trains, load, train."""
    check_run_directory(args.out, args.resume, args.overwrite)
    device = training_device(args.device)
    subject = load_subject(args.subject)
    model_config, config = configs_from_args(args, len(subject.muscles))
    check_precision(config.precision, device)
    rank, _, _ = launched_by_torchrun()
    if rank == 0:
        print(
            f"train-fit: device {describe_device(device)}, {precision_line(config.precision)}",
            flush=True,
        )
    files = trial_files(args)
    sides = LEGS[config.legs]
    units = angles_in_degrees(args)
    window = WindowConfig(window=model_config.window, stride=config.stride)
    needs = window.window + DERIVATIVE_TAPS - 1
    overlaps = []
    for f in files:
        overlap = check_trial_files(f.ik, f.grf, f.loads, subject.coordinates, sides, units)
        check_duration(
            f"the IK-GRF overlap of {f.ik}", overlap.duration_s, config.rate_hz, needs,
            f"one window ({window.window} rows + {DERIVATIVE_TAPS - 1} of derivative history)",
        )  # fmt: skip
        overlaps.append(overlap)
    per_trial = load_trials(files, subject, config.rate_hz, sides, units)
    for overlap, legs in zip(overlaps, per_trial):
        counts = ", ".join(
            f"{'right' if leg.side == 'r' else 'left'} {window_ends(leg.n_samples, window).size}"
            for leg in legs
        )
        if rank == 0:
            print(f"train-fit: {overlap.describe(f'windows {counts}')}", flush=True)
    legs = [leg for pair in per_trial for leg in pair]
    storages = None
    if args.labels:
        storages = [read_storage(f.labels) for f in files for _ in sides]
    extra = augmented(legs, config.augment, config.seed, subject)
    with InterruptCheckpoint() as interrupt:
        return fit(
            subject,
            legs,
            args.out,
            model_config,
            config,
            label_storages=storages,
            resume=args.resume,
            progress=not args.no_progress,
            extra_trials=extra,
            threads=args.threads,
            overwrite=args.overwrite,
            interrupt=interrupt,
            device=device,
        )


FIT_ERRORS = (
    FitError,
    DeviceError,
    RunError,
    SubjectError,
    TrialError,
    WindowError,
    DataError,
    StorageError,
    ExternalLoadsError,
    PhysicsError,
    FileNotFoundError,
)


if __name__ == "__main__":  # python -m train.fit: the same command as train.cli.fit
    from train.cli.fit import main

    raise SystemExit(main())
