"""``train-id``: the joint moments a trial requires, in OpenSim's inverse-dynamics layout.

The moments are ``train.physics_targets.required_torques``, the very targets the
physics loss and ``train-so`` balance, so a user can hold them against
OpenSim's own InverseDynamicsTool before training: columns
``<coordinate>_<side>_moment`` in N m with OpenSim's sign (positive along the
coordinate's positive rotation), one row per sample at ``--rate``.
"""

from __future__ import annotations

import argparse

from firmware_bridge.command_line import PATH_ERRORS, bad_input, command_parser, run_command
from train import cli


def _parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "train-id",
        description=(
            "Inverse dynamics of one leg below the moving pelvis: the moments of hip flexion, "
            "adduction and rotation, knee and ankle (three-dimensional thigh, shank and foot "
            "with the measured ground reaction, centre of pressure and free moment), or with "
            "--sagittal the planar hip, knee and ankle of the paper. Writes an OpenSim storage "
            "file laid out like OpenSim's InverseDynamicsTool output (time, "
            "<coordinate>_moment in N m)."
        ),
        epilog=(
            "Example: train-id --ik walk_ik.mot --grf walk_grf.mot --loads walk_grf.xml "
            "--subject subject.json -o walk_id.sto"
        ),
    )
    cli.add_trial_arguments(parser)
    cli.add_out_argument(parser, "FILE", "output .sto")
    cli.add_rate_argument(parser, "rows per second")
    parser.add_argument("--sagittal", action="store_true", help="planar hip, knee and ankle only")
    parser.add_argument(
        "--no-base-motion",
        action="store_true",
        help="hold the pelvis still at each sample's measured pose",
    )
    return parser


def _run(args: argparse.Namespace) -> int:
    from calib.subject import SubjectError, load_subject
    from train.opensim_io import ExternalLoadsError, StorageError, write_storage
    from train.physics_targets import (
        PhysicsError,
        PhysicsOptions,
        choose_balance,
        required_torques,
    )
    from train.trial import TrialConfig, TrialError, load_trial, noncausal_derivatives

    with bad_input(
        SubjectError, StorageError, ExternalLoadsError, TrialError, PhysicsError, *PATH_ERRORS
    ):
        subject = load_subject(args.subject)
        config = TrialConfig(kinematics_cutoff_hz=cli.lowpass_hz(args))
        trial = load_trial(
            args.ik, args.grf, args.loads, subject, args.rate, args.side, config,
            angles_in_degrees=cli.angles_in_degrees(args),
        )  # fmt: skip
        balanced, reason = choose_balance([trial], "sagittal" if args.sagittal else "auto")
        print(f"train-id: {reason}")
        qd, qdd = noncausal_derivatives(trial.q, trial.rate_hz)
        options = PhysicsOptions(balanced=balanced, base_motion=not args.no_base_motion)
        moments = required_torques(trial, subject, qd, qdd, options)
        columns = [f"{name}_{args.side}_moment" for name in balanced]
        written = write_storage(
            args.out,
            trial.time,
            columns,
            moments,
            name="Inverse Dynamics Generalized Forces",
            description="train-id: generalised forces the leg's coordinates require (N m).",
        )
    for name, column in zip(columns, moments.T):
        print(f"  {name}: peak |.| {abs(column).max():.1f} N m")
    print(
        f"train-id: wrote {written} ({trial.n_samples} rows, "
        f"{trial.time[0]:.3f}-{trial.time[-1]:.3f} s)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(_parser(), _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
