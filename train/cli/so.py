"""``train-so``: static optimisation of one leg (``train.static_optimization``)."""

from __future__ import annotations

import argparse
import time

from train.cli import add_units_argument, angles_in_degrees, fail


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train-so",
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
    parser.add_argument("--ik", required=True, help="inverse-kinematics coordinates (.mot/.sto)")
    add_units_argument(parser)
    parser.add_argument("--grf", required=True, help="ground reaction forces (.mot)")
    parser.add_argument("--loads", required=True, help="OpenSim ExternalLoads (.xml)")
    parser.add_argument("--subject", required=True, help="subject.json (calib-subject)")
    parser.add_argument("-o", "--output", required=True, metavar="PREFIX", help="output prefix")
    parser.add_argument(
        "--rate", type=float, default=100.0, metavar="HZ", help="frame rate (default 100 Hz)"
    )
    parser.add_argument(
        "--start", type=float, metavar="S", help="first time (s), within the trial's span"
    )
    parser.add_argument(
        "--end", type=float, metavar="S", help="last time (s), within the trial's span"
    )
    parser.add_argument("--side", choices=("r", "l"), default="r", help="leg (default r)")
    parser.add_argument(
        "--lowpass",
        type=float,
        default=6.0,
        metavar="HZ",
        help="low-pass cut-off of the joint angles, as OpenSim's SO (default 6 Hz; 0 = off)",
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from calib.subject import SubjectError, load_subject
    from train import static_optimization as so
    from train.data_checks import DataError, check_span, check_trial_files
    from train.opensim_io import ExternalLoadsError, StorageError
    from train.physics_targets import PhysicsError, choose_balance
    from train.trial import TrialConfig, TrialError, load_trial

    try:
        trial_config = TrialConfig(kinematics_cutoff_hz=args.lowpass if args.lowpass > 0 else None)
        subject = load_subject(args.subject)
        units = angles_in_degrees(args)
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
        written = so.write_results(args.output, result, subject.muscle_names, args.side)
    except (
        so.StaticOptimizationError,
        DataError,
        SubjectError,
        StorageError,
        ExternalLoadsError,
        TrialError,
        PhysicsError,
        OSError,
    ) as exc:
        return fail("train-so", exc)
    so.print_report(result, total, written, args.side)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
