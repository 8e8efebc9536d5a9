"""The built-in gait's joint moments against the recorded trial it was fitted to.

Builds the built-in gait (``train.normative.normative_leg``, both legs) for a
subject of the source's body weight (the weight the kinetics were normalised
by) and compares its required moments of the five coordinates
(``train.physics_targets.required_torques``, the pelvis moving) with those of
subject01_walk1's own trial over each leg's recorded cycle, phase for phase.
Prints, per leg and coordinate, the recorded peak |moment|, the RMS difference
and the difference's peak (N m). The built gait is the right leg's cycle (its
left leg walks the same cycle half a cycle later), so the right leg measures
the fit and the left leg the source's left-right asymmetry.

    python scripts/normative_moments.py [--data ../shared/data/opensim-gait2392]
        [--subject subject01.json]

``--subject``: a five-coordinate subject.json (default: calib's default subject;
subject01's own scaled model is the like-for-like comparison).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from calib import default_subject, load_subject
from calib.coordinates import COORDINATES
from firmware_bridge.normative_gait import load_normative_gait
from train.dynamics3d import GRAVITY
from train.normative import NormativeKinetics, normative_leg
from train.physics_targets import PhysicsOptions, required_torques
from train.trial import gait_events, load_both_legs, noncausal_derivatives

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "opensim-gait2392"
CYCLES = 3  # the middle one is compared: no derivative edge effects
RATE_HZ = 100.0


def with_body_weight(subject, weight_n: float):
    """What the dynamics read of ``subject``, with the body mass that weighs ``weight_n``."""
    return SimpleNamespace(
        body=SimpleNamespace(mass=weight_n / -GRAVITY[1]),
        segments=subject.segments,
        joints=subject.joints,
        hip_centre=subject.hip_centre,
    )


def moments(trial, subject) -> np.ndarray:
    qd, qdd = noncausal_derivatives(trial.q, trial.rate_hz)
    return required_torques(trial, subject, qd, qdd, PhysicsOptions())


def compare(
    subject, data: Path = DEFAULT_DATA, kinetics: NormativeKinetics | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """Per leg ("r", "l"): recorded peak |moment|, RMS and peak |difference| (5,) N m over
    the leg's first recorded cycle, built-in gait (``kinetics``: default the shipped
    file) vs recorded."""
    legs = load_both_legs(
        data / "subject01_walk1_ik.mot",
        data / "subject01_walk1_grf.mot",
        data / "subject01_walk1_grf.xml",
        subject,
        RATE_HZ,
    )
    # the body weight the kinetics were normalised by: both feet's mean vertical force
    strikes, _ = gait_events(legs[0])
    cycle = (legs[0].time >= strikes[0]) & (legs[0].time < strikes[1])
    body = with_body_weight(subject, float(np.mean(sum(leg.force[cycle, 1] for leg in legs))))
    period = load_normative_gait().period_s
    result = {}
    for leg in legs:
        built = normative_leg(body, CYCLES, leg.side, RATE_HZ, kinetics=kinetics)
        built_tau = moments(built, body)
        strikes, _ = gait_events(leg)
        inside = (leg.time >= strikes[0]) & (leg.time < strikes[1])
        # the built leg's heel strikes: 0 (right) or half a cycle later (left), then each period
        first = 0.5 * period if leg.side == "l" else 0.0
        at = first + period + (leg.time[inside] - strikes[0]) * period / (strikes[1] - strikes[0])
        built_at = np.column_stack([np.interp(at, built.time, column) for column in built_tau.T])
        recorded = moments(leg, body)[inside]
        difference = built_at - recorded
        result[leg.side] = {
            "peak": np.abs(recorded).max(axis=0),
            "rms": np.sqrt(np.mean(difference**2, axis=0)),
            "max": np.abs(difference).max(axis=0),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="opensim-gait2392 folder")
    parser.add_argument("--subject", type=Path, help="five-coordinate subject.json")
    args = parser.parse_args(argv)
    if not (args.data / "subject01_walk1_ik.mot").is_file():
        print(
            f"normative_moments: no subject01_walk1 trial in {args.data}; pass --data",
            file=sys.stderr,
        )
        return 2
    subject = load_subject(args.subject) if args.subject else default_subject()
    for side, figures in compare(subject, args.data).items():
        print(
            "right leg, its first recorded cycle (N m):"
            if side == "r"
            else "left leg, its first recorded cycle (N m; the built gait is the right leg's "
            "cycle, so this measures the source's left-right asymmetry):"
        )
        print(f"  {'coordinate':14s} {'peak':>7s} {'RMS diff':>9s} {'% peak':>7s} {'max diff':>9s}")
        for k, name in enumerate(COORDINATES):
            peak, rms, worst = (figures[key][k] for key in ("peak", "rms", "max"))
            print(f"  {name:14s} {peak:7.1f} {rms:9.2f} {100 * rms / peak:6.1f}% {worst:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
