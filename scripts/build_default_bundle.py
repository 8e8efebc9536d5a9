"""Rebuild edge/default_bundle/: a label-free PI-MJCA-BiGRU for the default subject on the built-in gait.

Recipe (deterministic for a seed):
1. subject: ``calib.default_subject()`` (generic gait2392, the paper's ten muscles);
2. movement: the built-in gait cycle ``firmware_bridge.normative_gait`` (angles
   vs phase, right heel strike at phase 0), ``--cycles`` cycles at its own
   period, for the right leg and, half a cycle later, the left;
3. kinetics: ``train/data/normative_kinetics.json`` (scripts/fit_normative_kinetics.py,
   from the real subject01 trial): ground reaction force per body weight and
   centre of pressure relative to the ankle per leg length, vs stance phase,
   scaled to the default subject's weight and leg length; the foot is free
   in swing. The pelvis is upright and the hip fixed (the gait file has no
   pelvis motion), i.e. the paper's fixed-hip model;
4. variety: ``--augment`` label-free variants per leg from ``train.augment``
   (time-warped speeds 0.8-1.25x, joint amplitude 0.9-1.1x, +-2 degree offsets);
5. training: ``train.fit.fit`` with the paper's loss and optimiser settings,
   ``--epochs`` epochs (default below, chosen to fit this project's CPU budget),
   the network's ``--output`` mapping (train.model) and ``--input-noise-deg``
   of Gaussian angle noise on the training inputs (train.fit). Why 0.15
   degree: the bundle trained on clean angles alone lost its R^2 against its
   own noiseless answers (below 0 for some muscles) at 0.3 degree of noise; a
   14-bit encoder quantises to 0.022 degree (0.006 degree std) and sensor
   noise of a few hundredths to a tenth of a degree is typical, so 0.15 degree
   covers it with margin while its 14 rad/s^2 of acceleration noise (std, at
   100 Hz) stays well under walking's joint accelerations. Measured on the
   built-in gait (activations from noisy vs clean angles, worst muscle's
   R^2): trained on clean angles 0.85 / 0.47 / -0.98 / -3.66 at 0.05 / 0.1 /
   0.2 / 0.3 degree; with 0.15 degree of training noise (and the bounded
   output) 1.000 / 0.999 / 0.996 / 0.989, with clean activations correlating
   0.96-1.0 per muscle with the clean-trained bundle's (the medial
   gastrocnemius, capped at 1 now, the least); the ankle's validation torque
   RMSE rose from 6.7 to 12.5 N m, the torque the ten muscles cannot supply
   within a <= 1;
6. export: ``train.export.export_bundle`` into ``--out`` (default edge/default_bundle/),
   which checks eager / torch.export / ONNX Runtime parity before returning.

    python scripts/build_default_bundle.py [--epochs N] [--augment K] [--seed S] [--out DIR]
        [--output bounded] [--input-noise-deg 0.15]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from calib import default_subject
from firmware_bridge.normative_gait import load_normative_gait
from train.augment import augment_trials
from train.dynamics import GRAVITY, joint_positions
from train.fit import TrainingConfig, fit
from train.model import OUTPUTS, ModelConfig
from train.trial import LegTrial

REPO = Path(__file__).resolve().parents[1]
KINETICS = REPO / "train" / "data" / "normative_kinetics.json"
DEFAULT_OUT = REPO / "edge" / "default_bundle"
RATE_HZ = 100.0
ANKLE = 2  # index of the ankle in train.dynamics.POINTS
DEFAULT_OUTPUT = "bounded"
DEFAULT_INPUT_NOISE_DEG = 0.15


def leg_length_m(subject) -> float:
    """Hip to ankle joint centre at the default pose (m), as the kinetics were normalised."""
    thigh = np.asarray(subject.segments["thigh"].distal_joint)
    shank = np.asarray(subject.segments["shank"].distal_joint)
    return float(np.linalg.norm(thigh + shank))


def normative_leg(subject, kinetics: dict, cycles: int, side: str) -> LegTrial:
    """One leg walking the built-in gait for ``cycles`` cycles at ``RATE_HZ``."""
    gait = load_normative_gait()
    n = round(cycles * gait.period_s * RATE_HZ)
    time_s = np.arange(n) / RATE_HZ
    phase = time_s / gait.period_s - (0.5 if side == "l" else 0.0)
    q = gait.angles_at_phase(phase)
    cycle_phase = np.mod(phase, 1.0)
    stance = float(kinetics["stance_fraction"])
    contact = cycle_phase < stance
    s = np.clip(cycle_phase / stance, 0.0, 1.0)
    b = np.asarray(kinetics["force_per_body_weight_sin"])  # (2, K), k = 1..K
    c = np.asarray(kinetics["cop_from_ankle_per_leg_length_cos"])  # (2, K+1), k = 0..K
    sines = np.sin(np.pi * s[:, None] * np.arange(1, b.shape[1] + 1))
    cosines = np.cos(np.pi * s[:, None] * np.arange(0, c.shape[1]))
    weight = subject.body.mass * GRAVITY
    force = weight * sines @ b.T
    ankle = joint_positions(subject, q)[:, ANKLE, :]
    cop = ankle + leg_length_m(subject) * cosines @ c.T
    contact &= force[:, 1] > 0
    return LegTrial(
        time=time_s,
        q=q,
        force=np.where(contact[:, None], force, 0.0),
        cop=np.where(contact[:, None], cop, 0.0),
        contact=contact,
        pelvis_tilt=np.zeros(n),
        hip_acceleration=np.zeros((n, 2)),
        side=side,
        rate_hz=RATE_HZ,
        source=("firmware_bridge.normative_gait",),
        variant="normative",
    )


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
        help=f"training angle noise std in degrees (default {DEFAULT_INPUT_NOISE_DEG}, see the doc)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="bundle directory")
    parser.add_argument("--run", type=Path, help="keep the training RUN here (default: temporary)")
    args = parser.parse_args(argv)
    from train.export import export_bundle

    started = time.perf_counter()
    subject = default_subject()
    kinetics = json.loads(KINETICS.read_text())
    legs = [normative_leg(subject, kinetics, args.cycles, side) for side in ("r", "l")]
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
