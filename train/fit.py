"""``train-fit``: train PI-MJCA-BiGRU (label-free) or its supervised baseline on OpenSim trials.

One path a reader can follow, one module per stage:

    trials (``train.dataset.load_trials``)
    -> windows with inputs, physics targets and labels, split by time and joined with
       the augmented legs (``train.dataset.build_training_data``)
    -> the network (``train.model``), AdamW and the cosine schedule
    -> epochs until the convergence rule or the cap (``train.training_loop``), with
       checkpoints (``train.checkpoints``) in one process or several (``train.distributed``)
    -> metrics (``train.fit_report``) and the RUN directory (``train.run``).

``train.fit_config`` holds the configuration (the paper's Section III-C2 defaults) and
its merging from ``--config`` and the flags; ``fit`` is the whole of it for a caller with
trials in memory, ``run_cli`` for ``train.cli.fit``'s parsed arguments.

Time: one step (batch 8, window 20) is a few batched products of precomputed targets,
and an epoch is (training windows / 8) steps, so training time grows linearly with the
recorded time. One thread per process by default (``--threads``): a second thread makes
each step slower, not faster, when the CPU is shared (docs/training.md).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from calib.subject import Subject, SubjectError, load_subject
from edge.derivatives import DERIVATIVE_TAPS
from firmware_bridge.command_line import PATH_ERRORS
from train.checkpoints import InterruptCheckpoint, TrainingInterrupted, load_checkpoint
from train.cli import angles_in_degrees
from train.data_checks import DataError, check_duration, check_trial_files
from train.dataset import augmented, build_training_data, load_trials
from train.device import DeviceError, check_precision, describe_device, precision_line
from train.distributed import (
    data_parallel,
    effective_batch_line,
    init_distributed,
    launched_by_torchrun,
    processes_note,
    training_device,
    window_sampler,
)
from train.fit_config import (
    LEGS,
    FitError,
    TrainingConfig,
    configs_from_args,
    trial_files,
)
from train.fit_report import set_metrics, training_summary
from train.model import ModelConfig, build_model
from train.opensim_io import ExternalLoadsError, Storage, StorageError, read_storage
from train.physics_targets import PhysicsError, choose_balance
from train.plots import plot_losses
from train.run import (
    CHECKPOINT_FILE,
    HISTORY_FILE,
    LOSSES_PLOT_FILE,
    RunError,
    check_run_directory,
    clear_run_directory,
    save_run,
)
from train.training_loop import cosine_schedule, make_optimizer, run_epochs
from train.trial import LegTrial, TrialError
from train.windows import WindowConfig, WindowError, window_ends

__all__ = ["FIT_ERRORS", "FitResult", "TrainingInterrupted", "fit", "run_cli"]
"""What ``train.cli.fit`` and the scripts use; the parts live in the modules the doc names."""

DEFAULT_TRAINING = TrainingConfig()


@dataclass(frozen=True, eq=False)
class FitResult:
    """What ``fit`` returns: the RUN directory, its metrics and the wall time in s."""

    directory: Path
    metrics: dict[str, Any]
    seconds: float


def fit(
    subject: Subject,
    trials: list[LegTrial],
    out: str | Path,
    model_config: ModelConfig,
    config: TrainingConfig = DEFAULT_TRAINING,
    label_storages: list[Storage] | None = None,
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
    if config.mode == "supervised" and label_storages is None:
        raise FitError("supervised training needs --labels (reference activations, .sto)")
    if config.mode == "supervised" and extra_trials:
        raise FitError("augmented trials carry no labels: use --augment only with --mode pi")
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
    data = build_training_data(
        trials, subject, window_config, config.validation_fraction, label_storages, extra_trials
    )
    if len(data.train) < config.batch_size:
        raise FitError(
            f"only {len(data.train)} training windows for a batch of {config.batch_size}: "
            "give longer or more trials, or a smaller batch"
        )
    model = build_model(model_config, *data.train.input_statistics()).to(device)
    train_tensors, validation_tensors = data.tensors(config.passive_force, device)
    if config.mode == "pi" and config.loss_weighting == "augmented_lagrangian":
        train_tensors["multipliers"] = torch.zeros_like(train_tensors["required_torque"])

    optimizer = make_optimizer(model, config)
    schedule = cosine_schedule(optimizer, config)
    history: list[dict[str, float]] = []
    checkpoint_path = out / CHECKPOINT_FILE
    if resume:
        _, history = load_checkpoint(
            checkpoint_path, model, optimizer, schedule, config, train_tensors
        )
    trained = data_parallel(model, device, world)
    sampler = window_sampler(len(data.train), world, config.seed)
    if world.is_main:
        if overwrite:
            clear_run_directory(out)
        out.mkdir(parents=True, exist_ok=True)
        print(
            f"train-fit: {config.mode} {model_config.architecture}, {len(data.train)} training / "
            f"{len(data.validation)} validation windows at {data.rate_hz:g} Hz, "
            f"{len(subject.muscles)} muscles, inputs {', '.join(model_config.input_coordinates)}, "
            f"{config.epochs} epochs x {math.ceil(len(sampler) / config.batch_size)} steps"
            f"{processes_note(world)}; on {device}, {precision_line(config.precision)}",
            flush=True,
        )
        print(effective_batch_line(config, world), flush=True)
    stopped = run_epochs(
        model, trained, train_tensors, validation_tensors, sampler, optimizer, schedule,
        config, world, data.rate_hz, checkpoint_path, history, progress, interrupt,
    )  # fmt: skip

    seconds = time.perf_counter() - started
    sets = {"train": train_tensors, "validation": validation_tensors}
    metrics = set_metrics(model, sets, data.balanced, subject.muscle_names, config)
    metrics.update(
        {
            "training_seconds": seconds,
            "epochs": len(history),
            "epochs_cap": config.epochs,
            "stopped_by": stopped,
            "processes": world.world_size,
            "device": describe_device(device),
            "precision": config.precision,
            "windows": {"train": len(data.train), "validation": len(data.validation)},
            "trials": list(data.trial_names),
            "balanced_coordinates": list(balanced),
            "input_coordinates": list(model_config.input_coordinates),
        }
    )
    if world.is_main:
        save_run(
            out,
            model,
            subject,
            data.rate_hz,
            training={**asdict(config), "window": asdict(window_config)},
            metrics=metrics,
        )
        (out / HISTORY_FILE).write_text(json.dumps(history, indent=1) + "\n")
        plot_losses(history, out / LOSSES_PLOT_FILE)
        print(training_summary(metrics, out), flush=True)
    if world.world_size > 1:
        dist.barrier()
    return FitResult(directory=out, metrics=metrics, seconds=seconds)


def run_cli(args: argparse.Namespace) -> FitResult:
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
        storages = [read_storage(f.labels) for f in files if f.labels for _ in sides]
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


FIT_ERRORS: tuple[type[Exception], ...] = (
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
    *PATH_ERRORS,
)


if __name__ == "__main__":  # python -m train.fit: the same command as train.cli.fit
    from train.cli.fit import main

    raise SystemExit(main())
