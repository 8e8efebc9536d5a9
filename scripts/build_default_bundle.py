"""Rebuild edge/default_bundle/: a label-free PI-MJCA-BiGRU for the default subject on the
built-in gait.

Recipe (deterministic for a seed):
1. subject: ``calib.default_subject()`` (generic gait2392, its 43 right-leg muscles over
   five coordinates; the manifest reports the paper's ten by default);
2. movement: the built-in gait cycle ``firmware_bridge.normative_gait`` (the
   right leg's five coordinates vs phase, right heel strike at phase 0),
   ``--cycles`` cycles at its own period, for the right leg and, half a cycle
   later, the left (``train.normative.normative_leg``: the left leg in the right
   leg's mirrored world, as train.trial loads left legs);
3. pelvis and kinetics: ``train/data/normative_kinetics.json``
   (scripts/fit_normative_kinetics.py, from the same cycle of the real subject01
   trial): the pelvis's six coordinates vs phase (angles; translations per leg
   length, treadmill-like), the ground reaction force and free moment per body
   weight and the centre of pressure relative to the ankle in the foot's frame
   per leg length, vs stance phase, scaled to the default subject's weight and
   leg length; the foot is free in swing (scripts/normative_moments.py compares
   the gait's required moments with the recorded trial's);
4. variety: ``--augment`` label-free variants per leg from ``train.augment``
   (time-warped speeds 0.8-1.25x, joint amplitude 0.9-1.1x, +-2 degree offsets);
5. training: ``train.fit.fit`` with the paper's loss and optimiser settings,
   ``--epochs`` epochs (default below, chosen to fit this project's CPU budget),
   the network's ``--output`` mapping (train.model) and ``--input-noise-deg``
   of Gaussian angle noise on the training inputs (train.fit). Why 0.15
   degree: a bundle trained on clean angles alone answers noisy angles badly
   (its R^2 against its own noiseless answers falls below 0 for some muscles
   at a few tenths of a degree), while sensor noise of a few hundredths to a
   tenth of a degree is typical (a 14-bit encoder quantises to 0.022 degree);
   0.15 degree covers that with margin and keeps the acceleration noise it
   causes well under walking's joint accelerations (figures:
   docs/measurements.md);
6. export: ``train.export.export_bundle`` into ``--out`` (default edge/default_bundle/),
   which checks eager / torch.export / ONNX Runtime parity before returning.

    python scripts/build_default_bundle.py [--epochs N] [--augment K] [--seed S] [--out DIR]
        [--output clamped] [--input-noise-deg 0.15]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from calib import default_subject
from train.augment import augment_trials
from train.model import OUTPUTS, ModelConfig
from train.normative import normative_leg

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "edge" / "default_bundle"
DEFAULT_OUTPUT = ModelConfig.output
DEFAULT_INPUT_NOISE_DEG = 0.15


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=100, help="training epochs (default 100)")
    parser.add_argument("--augment", type=int, default=3, help="variants per leg (default 3)")
    parser.add_argument("--cycles", type=int, default=4, help="gait cycles per leg (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--output",
        choices=OUTPUTS,
        default=DEFAULT_OUTPUT,
        help=f"output mapping (default {DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--input-noise-deg",
        type=float,
        default=DEFAULT_INPUT_NOISE_DEG,
        help=(
            f"training angle noise std in degrees (default {DEFAULT_INPUT_NOISE_DEG}, see the doc)"
        ),
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="bundle directory")
    parser.add_argument("--run", type=Path, help="keep the training RUN here (default: temporary)")
    args = parser.parse_args(argv)
    from train.export import export_bundle
    from train.fit import fit
    from train.fit_config import TrainingConfig

    started = time.perf_counter()
    subject = default_subject()
    legs = [normative_leg(subject, args.cycles, side) for side in ("r", "l")]
    variants = augment_trials(legs, args.augment, args.seed, subject)
    config = TrainingConfig(
        epochs=args.epochs,
        seed=args.seed,
        augment=args.augment,
        input_noise_deg=args.input_noise_deg,
    )
    model_config = ModelConfig(n_muscles=len(subject.muscles), output=args.output)
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = args.run or Path(scratch) / "run"
        result = fit(subject, legs, run_dir, model_config, config, extra_trials=variants)
        metrics = {
            "training": "label-free (physics-informed loss) on the built-in gait, "
            f"{args.cycles} cycles x 2 legs + {args.augment} variants per leg, "
            f"{args.epochs} epochs, seed {args.seed}, output {args.output}, "
            f"angle noise {args.input_noise_deg:g} degree",
            "validation_torque_rmse_nm": result.metrics["validation"]["torque_rmse_nm"],
            "validation_losses": result.metrics["validation"]["losses"],
            "training_seconds": result.seconds,
        }
        bundle = export_bundle(run_dir, args.out, metrics=metrics)
    size = sum(p.stat().st_size for p in args.out.iterdir())
    print(
        f"default bundle written to {bundle.directory} ({size / 1e6:.2f} MB) in "
        f"{time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
