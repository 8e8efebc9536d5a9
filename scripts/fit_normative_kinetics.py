"""Fit the built-in gait's kinetics (ground reaction force and centre of pressure vs stance phase).

The default bundle is trained label-free on the built-in gait cycle
(``firmware_bridge.normative_gait``: angles only). The physics loss also needs
each foot's ground reaction force and centre of pressure (COP). This script
fits them, as short Fourier series of the *stance* phase, to the real
subject01 walking trial in ../shared/data (both feet, one stance each), and
writes ``train/data/normative_kinetics.json``:

- stance phase s in [0, 1] from heel strike to toe-off (vertical force above
  train.trial's contact threshold); ``stance_fraction`` = stance duration over
  the gait cycle (both feet averaged), so gait phase phi (0 = heel strike)
  maps to s = phi / stance_fraction during stance and the foot is free after;
- force per body weight, F / (m g), x and y: sine series sum_k b_k sin(k pi s),
  zero at heel strike and toe-off by construction;
- COP relative to the ankle joint centre, per leg length (hip to ankle at the
  default pose), x and y: cosine series sum_k c_k cos(k pi s). Relative to the
  ankle rather than the hip (a deviation from the first plan): the COP then
  stays under the foot whatever angles and segment lengths it is replayed
  with (the default subject is not subject01, and time-warped or
  amplitude-varied gaits move the foot), so its lever arms about the ankle
  and knee stay plausible.
- Body weight m g is taken from the trial itself: the mean of both feet's
  vertical force over the recorded whole cycle (steady treadmill walking).

    python scripts/fit_normative_kinetics.py [--data ../shared/data/opensim-gait2392]
        [--subject subject01.json] [--harmonics 10] [--out train/data/normative_kinetics.json]

``--subject`` gives the chain that places the ankle (default: calib's default
subject; subject01's own scaled model, from calib-subject --osim, is closer).
Prints the RMS fit error per quantity.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from calib import default_subject, load_subject
from train.dynamics import joint_positions
from train.trial import gait_events, load_both_legs

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "opensim-gait2392"
DEFAULT_OUT = REPO / "train" / "data" / "normative_kinetics.json"
RATE_HZ = 200.0
ANKLE = 2  # index of the ankle in train.dynamics.POINTS


def leg_length_m(subject) -> float:
    """Hip to ankle joint centre at the default pose (m)."""
    thigh = np.asarray(subject.segments["thigh"].distal_joint)
    shank = np.asarray(subject.segments["shank"].distal_joint)
    return float(np.linalg.norm(thigh + shank))


def stance_samples(leg, subject):
    """(s, force (n, 2) N, COP relative to the ankle (n, 2) m, stance duration, cycle) of the
    first complete stance of ``leg`` (heel strike to toe-off, both inside the trial)."""
    strikes, offs = gait_events(leg)
    for strike in strikes:
        later_offs = offs[offs > strike]
        if later_offs.size == 0:
            continue
        off = later_offs[0]
        inside = (leg.time >= strike) & (leg.time < off)
        ankle = joint_positions(subject, leg.q[inside], leg.pelvis_tilt[inside])[:, ANKLE, :]
        next_strikes = strikes[strikes > off]
        previous = strikes[strikes < strike]
        if next_strikes.size:
            cycle = next_strikes[0] - strike
        elif previous.size:
            cycle = strike - previous[-1]
        else:
            cycle = np.nan
        s = (leg.time[inside] - strike) / (off - strike)
        return s, leg.force[inside], leg.cop[inside] - ankle, off - strike, cycle
    raise SystemExit(f"no complete stance in the {leg.side} leg's trial")


def body_weight_n(legs) -> float:
    """Mean total vertical force over the right leg's first whole cycle (N)."""
    right = next(leg for leg in legs if leg.side == "r")
    strikes, _ = gait_events(right)
    if strikes.size < 2:
        raise SystemExit("the right leg needs two heel strikes to estimate body weight")
    inside = (right.time >= strikes[0]) & (right.time < strikes[1])
    total = sum(leg.force[inside, 1] for leg in legs)
    return float(np.mean(total))


def fit_series(s: np.ndarray, values: np.ndarray, harmonics: int, kind: str):
    """Least squares: sine series (k = 1..K) or cosine series (k = 0..K) of pi s."""
    k = np.arange(1, harmonics + 1) if kind == "sin" else np.arange(0, harmonics + 1)
    basis = np.sin(np.pi * s[:, None] * k) if kind == "sin" else np.cos(np.pi * s[:, None] * k)
    coefficients, *_ = np.linalg.lstsq(basis, values, rcond=None)
    residual = basis @ coefficients - values
    return coefficients.T, np.sqrt(np.mean(residual**2, axis=0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="opensim-gait2392 folder")
    parser.add_argument("--subject", type=Path, help="subject.json placing the ankle")
    parser.add_argument("--harmonics", type=int, default=10, help="terms per series (default 10)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="coefficient file to write")
    args = parser.parse_args(argv)
    ik = args.data / "subject01_walk1_ik.mot"
    if not ik.is_file():
        print(f"fit_normative_kinetics: {ik} not found; pass --data", file=sys.stderr)
        return 2
    subject = load_subject(args.subject) if args.subject else default_subject()
    legs = load_both_legs(
        ik, args.data / "subject01_walk1_grf.mot", args.data / "subject01_walk1_grf.xml",
        subject, RATE_HZ,
    )  # fmt: skip
    weight = body_weight_n(legs)
    length = leg_length_m(subject)
    pieces = [stance_samples(leg, subject) for leg in legs]
    s = np.concatenate([p[0] for p in pieces])
    force = np.concatenate([p[1] for p in pieces]) / weight
    cop = np.concatenate([p[2] for p in pieces]) / length
    force_coefficients, force_rms = fit_series(s, force, args.harmonics, "sin")
    cop_coefficients, cop_rms = fit_series(s, cop, args.harmonics, "cos")
    stance_fraction = float(np.nanmean([p[3] / p[4] for p in pieces]))
    result = {
        "schema_version": 1,
        "source": "OpenSim subject01_walk1 (gait2392 example data), right and left stance",
        "stance_fraction": stance_fraction,
        "body_weight_n_of_source": weight,
        "leg_length_m_of_source": length,
        "force_per_body_weight_sin": force_coefficients.tolist(),
        "cop_from_ankle_per_leg_length_cos": cop_coefficients.tolist(),
        "description": (
            "stance phase s in [0,1] (heel strike to toe-off); F/(m g) = sum_k b[:, k-1] "
            "sin(k pi s), k = 1..K; (COP - ankle)/leg_length = sum_k c[:, k] cos(k pi s), "
            "k = 0..K; rows x (anterior), y (up)"
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"body weight {weight:.1f} N, leg length {length:.3f} m, stance {stance_fraction:.3f}")
    print(f"RMS fit error: force/BW x {force_rms[0]:.4f} y {force_rms[1]:.4f}; "
          f"COP/leg x {cop_rms[0]:.4f} y {cop_rms[1]:.4f}")  # fmt: skip
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
