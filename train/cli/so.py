"""``train-so``: static optimisation of one leg (``train.static_optimization``)."""

from __future__ import annotations

import argparse
import time

from firmware_bridge.command_line import PATH_ERRORS, bad_input, command_parser, run_command
from train import cli


def _parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "train-so",
        description=(
            "Static optimisation of one leg: per frame, the activations that minimise "
            "the sum of squared activations while the muscles produce the moments the "
            "motion and the ground reaction require, 0.01 <= a <= 1: hip flexion, "
            "adduction and rotation, knee and ankle (three-dimensional inverse dynamics "
            "below the moving pelvis) where the IK file holds them, else the sagittal "
            "hip, knee and ankle. Moment the muscles cannot produce is reported as a "
            "residual (N m) per coordinate. Writes "
            "PREFIX_activation.sto, PREFIX_force.sto (eq. 18), PREFIX_active_force.sto "
            "and PREFIX_residual.sto, and prints the time per frame. The trial is the "
            "span the IK and GRF files share; one line says what was kept and dropped."
        ),
    )
    cli.add_trial_arguments(parser)
    cli.add_out_argument(parser, "PREFIX", "output prefix")
    cli.add_rate_argument(parser, "frames per second")
    parser.add_argument(
        "--start", type=float, metavar="S", help="first time (s), within the trial's span"
    )
    parser.add_argument(
        "--end", type=float, metavar="S", help="last time (s), within the trial's span"
    )
    parser.add_argument(
        "--passive",
        action="store_true",
        help="let passive fibre force help balance the torques (off by default, as in "
        "OpenSim's static optimisation: a rigid tendon overstretches some fibres)",
    )
    parser.add_argument(
        "--no-base-motion",
        action="store_true",
        help="hold the pelvis still at each frame's measured pose (no pelvis velocity or "
        "acceleration in the dynamics)",
    )
    parser.add_argument(
        "--reserve",
        type=float,
        default=1.0,
        metavar="NM",
        help="residual torque cost scale: cost (residual / NM)^2 (default 1 N m)",
    )
    parser.add_argument(
        "--sagittal",
        action="store_true",
        help="balance the sagittal hip, knee and ankle only (the paper's planar model)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _run(args: argparse.Namespace) -> int:
    from calib.subject import SubjectError, load_subject
    from train import static_optimization as so
    from train.data_checks import DataError, check_span, check_trial_files
    from train.opensim_io import ExternalLoadsError, StorageError
    from train.physics_targets import PhysicsError, choose_balance
    from train.trial import TrialConfig, TrialError, load_trial

    with bad_input(
        so.StaticOptimizationError,
        DataError,
        SubjectError,
        StorageError,
        ExternalLoadsError,
        TrialError,
        PhysicsError,
        *PATH_ERRORS,
    ):
        trial_config = TrialConfig(kinematics_cutoff_hz=cli.lowpass_hz(args))
        subject = load_subject(args.subject)
        units = cli.angles_in_degrees(args)
        overlap = check_trial_files(
            args.ik, args.grf, args.loads, subject.coordinates, (args.side,), units
        )
        trial = load_trial(
            args.ik,
            args.grf,
            args.loads,
            subject,
            args.rate,
            args.side,
            config=trial_config,
            angles_in_degrees=units,
        )
        check_span(
            args.start, args.end, (trial.time[0], trial.time[-1]),
            "the trial (the span the IK and GRF files share)",
        )  # fmt: skip
        print(overlap.describe(f"{trial.n_samples} frames at {trial.rate_hz:g} Hz"))
        balanced, reason = choose_balance([trial], "sagittal" if args.sagittal else "auto")
        print(f"train-so: {reason}")
        config = so.StaticOptimizationConfig(
            include_passive=args.passive,
            base_motion=not args.no_base_motion,
            reserve_torque_nm=args.reserve,
            balanced=balanced,
        )
        started = time.perf_counter()
        result = so.static_optimization(
            subject, trial, config, args.start, args.end, progress=not args.quiet
        )
        total = time.perf_counter() - started
        written = so.write_results(args.out, result, subject.muscle_names, args.side)
    so.print_report(result, total, written, args.side)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(_parser(), _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
