"""``train-fit``: train PI-MJCA-BiGRU (label-free) or its supervised baseline (``train.fit``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from firmware_bridge.command_line import bad_input, command_parser, run_command
from train.cli import add_device_argument, add_out_argument, add_trial_arguments
from train.options import (
    ARCHITECTURES,
    EPOCHS,
    LOSS_WEIGHTINGS,
    MIN_IMPROVEMENT,
    MODES,
    PAPER_LOSS_WEIGHTS,
    PATIENCE,
    PRECISIONS,
)
from train.options import LEG_CHOICES as LEGS


def _parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "train-fit",
        description=(
            "Train PI-MJCA-BiGRU on OpenSim trials: label-free with the physics-informed loss "
            "(--mode pi, default) or on reference activations (--mode supervised --labels). "
            "Both legs of every trial are used (--legs to choose). Repeat --ik/--grf/--loads "
            "(and --labels) once per trial, in the same order. Training stops when the "
            f"validation physics loss has improved by less than {100 * MIN_IMPROVEMENT:g} % "
            f"over {PATIENCE} epochs (--patience), at most after --epochs."
        ),
        epilog=(
            "Example: train-fit --ik walk_ik.mot --grf walk_grf.mot --loads walk_grf.xml "
            "--subject subject.json --out runs/walk. An --out that holds a run is refused "
            "without --resume or --overwrite; Ctrl-C writes a checkpoint of the last completed "
            "epoch, which --resume continues. Held out: --legs right trains on the right legs, "
            "then train-eval RUN --side l scores the left. Several processes (DDP; NCCL, one "
            "GPU each, or gloo on CPUs): torchrun --nproc_per_node=2 -m train.cli.fit ARGS (the "
            "same arguments; the effective batch is processes x 8, the learning rate is not "
            "scaled); several machines: see the README."
        ),
    )
    add_trial_arguments(parser, each_trial=True, leg=False)
    add_out_argument(parser, "RUN", "the run directory to write")
    parser.add_argument("--mode", choices=MODES, help="pi (label-free, default) or supervised")
    parser.add_argument(
        "--labels",
        action="append",
        type=Path,
        help="reference activations .sto per trial (supervised targets; in pi mode: metrics only)",
    )
    parser.add_argument(
        "--legs",
        choices=LEGS,
        help="which legs of each trial train (default both; one leg leaves the other held out)",
    )
    parser.add_argument("--epochs", type=int, help=f"the most epochs to train (default {EPOCHS})")
    parser.add_argument(
        "--patience",
        type=int,
        help=f"stop when the validation physics loss improved by less than "
        f"{100 * MIN_IMPROVEMENT:g} %% over this many epochs (default {PATIENCE}; 0 = train "
        "all --epochs)",
    )
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--rate", type=float, help="model sample rate in Hz (default 100)")
    parser.add_argument(
        "--lookahead", type=int, help="predict N samples before the window's end (default 0)"
    )
    parser.add_argument(
        "--architecture", choices=ARCHITECTURES, help="network (default mjca_bigru)"
    )
    parser.add_argument(
        "--augment", type=int, help="label-free augmented variants per leg (default 0)"
    )
    parser.add_argument(
        "--input-noise-deg",
        type=float,
        help="std in degrees of Gaussian noise on the training angles before the causal "
        "features (fresh every batch; targets stay clean; default 0)",
    )
    parser.add_argument(
        "--loss-weighting",
        choices=LOSS_WEIGHTINGS,
        help="fixed: the paper's weights w_d {:g}, w_p {:g}, w_b {:g} (default); ".format(
            *PAPER_LOSS_WEIGHTS
        )
        + "augmented_lagrangian: the torque balance as a constraint with per-window multipliers "
        "raised every epoch (the solution no longer depends on w_d; one extra forward pass "
        "per epoch)",
    )
    parser.add_argument(
        "--sagittal",
        action="store_true",
        help="balance the sagittal hip, knee and ankle only (the paper's planar model); by "
        "default hip flexion, adduction and rotation, knee and ankle wherever the IK holds them",
    )
    parser.add_argument(
        "--inputs",
        metavar="COORDS",
        help="the network's input coordinates: 'sagittal' (default: hip_flexion, knee_angle, "
        "ankle_angle, what an encoder exoskeleton measures), 'five' (adds hip_adduction and "
        "hip_rotation, as an IMU suit provides) or a comma-separated list",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help='JSON {"model": {...ModelConfig}, "training": {...TrainingConfig}}; flags override it',
    )
    run = parser.add_mutually_exclusive_group()
    run.add_argument("--resume", action="store_true", help="continue from RUN/checkpoint.pt")
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run in --out (its files are deleted when training starts)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads per process (default 1: this small network's steps are too short "
        "to share, and a second thread spins when the CPU is busy)",
    )
    add_device_argument(parser, "auto", "training runs")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="the network's forward pass: fp32 (default), or autocast to bf16 (GPUs of compute "
        "capability 8.0 or newer, and CPUs) or fp16 (with loss scaling); the physics loss always "
        "runs in fp32",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _run(args: argparse.Namespace) -> int:
    import torch.distributed as dist

    from train import fit as fitting

    try:
        with bad_input(*fitting.FIT_ERRORS):
            fitting.run_cli(args)
    except fitting.TrainingInterrupted as exc:
        print(f"train-fit: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(
            "train-fit: interrupted before training started; nothing was written", file=sys.stderr
        )
        return 130
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
