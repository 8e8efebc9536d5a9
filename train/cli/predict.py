"""``train-predict``: estimate activations and forces of a recording with a trained network."""

from __future__ import annotations

import argparse

from firmware_bridge.command_line import bad_input, command_parser, run_command
from train.cli import (
    add_ik_argument,
    add_inference_arguments,
    add_kinetics_arguments,
    add_leg_arguments,
    add_out_argument,
    angles_in_degrees,
    lowpass_hz,
)


def _parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "train-predict",
        description=(
            "Estimate muscle activations and forces of a recording with a trained network. "
            "RUN is a training run (train-fit --out) or a bundle (train-export). Writes "
            "PREFIX_activation.sto, PREFIX_force.sto (muscle-tendon force, eq. 18) and "
            "PREFIX_active_force.sto (active part, comparable with OpenSim's static "
            "optimisation), one row per sample with a full window before it."
        ),
    )
    parser.add_argument("run", metavar="RUN", help="training run or bundle directory")
    add_ik_argument(parser)
    add_leg_arguments(parser)
    add_kinetics_arguments(parser, required=False)
    add_inference_arguments(parser)
    add_out_argument(parser, "PREFIX", "output prefix")
    return parser


def _run(args: argparse.Namespace) -> int:
    from train.predict import PREDICTION_ERRORS, load_predictor, predict_files, write_prediction

    notes: list[str] = []
    with bad_input(*PREDICTION_ERRORS):
        predictor = load_predictor(args.run, args.backend, args.threads, args.device)
        prediction = predict_files(
            predictor,
            args.ik,
            args.grf,
            args.loads,
            args.side,
            lowpass_hz(args),
            angles_in_degrees(args),
            notes,
        )
        written = write_prediction(args.out, prediction, predictor.muscles)
    for note in notes:
        print(note)
    n = prediction.time.size
    print(
        f"{predictor.source}: {n} samples {prediction.time[0]:.3f}-{prediction.time[-1]:.3f} s "
        f"at {predictor.rate_hz:g} Hz (window {predictor.window}, lookahead "
        f"{predictor.lookahead}); network {prediction.inference_s:.2f} s in all, "
        f"{1e3 * prediction.inference_s / n:.3f} ms per sample"
    )
    for path in written:
        print(f"  wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(_parser(), _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
