"""``train-predict``: estimate activations and forces of a recording with a trained network."""

from __future__ import annotations

import argparse

from train.cli import (
    add_angle_arguments,
    add_inference_arguments,
    angles_in_degrees,
    fail,
    lowpass_hz,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train-predict",
        description=(
            "Estimate muscle activations and forces of a recording with a trained network. "
            "RUN is a training run (train-fit --out) or a bundle (train-export). Writes "
            "PREFIX_activation.sto, PREFIX_force.sto (muscle-tendon force, eq. 18) and "
            "PREFIX_active_force.sto (active part, comparable with OpenSim's static "
            "optimisation), one row per sample with a full window before it."
        ),
    )
    parser.add_argument("run", metavar="RUN", help="training run or bundle directory")
    parser.add_argument("--ik", required=True, help="inverse-kinematics coordinates (.mot/.sto)")
    add_angle_arguments(parser)
    parser.add_argument(
        "--grf", help="ground reaction forces (.mot): load the trial as training does"
    )
    parser.add_argument("--loads", help="OpenSim ExternalLoads (.xml), with --grf")
    add_inference_arguments(parser)
    parser.add_argument("-o", "--output", required=True, metavar="PREFIX", help="output prefix")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from train.predict import PREDICTION_ERRORS, load_predictor, predict_files, write_prediction

    notes: list[str] = []
    try:
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
        written = write_prediction(args.output, prediction, predictor.muscles)
    except PREDICTION_ERRORS as exc:
        return fail("train-predict", exc)
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


if __name__ == "__main__":
    raise SystemExit(main())
