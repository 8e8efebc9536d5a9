"""Fit the built-in gait's pelvis motion and loads (ground reaction force, centre of pressure,
free moment) to the real subject01 walking trial.

The default bundle is trained label-free on the built-in gait cycle
(``firmware_bridge.normative_gait``: the right leg's five coordinates over
subject01_walk1's right cycle, heel strikes 0.618 s and 1.853 s). A
five-coordinate balance also needs the pelvis's motion (the leg's moving
base) and the foot's ground reaction. This script fits them to the same
cycle of the real trial in ../shared/data and writes
``train/data/normative_kinetics.json``, which ``train.normative`` reads (its
docstring says what each series means):

- the pelvis's six coordinates, Fourier series of the gait phase over the
  cycle, as inverse kinematics gives them (not low-passed: ``normative_leg``
  filters them as ``train.trial`` filters a recorded trial); tilt, list,
  rotation (rad) and ty with their means, tx and tz about their cycle means
  (places in the lab: treadmill-like); translations per leg length;
- the right foot's stance in that cycle vs stance phase s in [0, 1] (heel
  strike to toe-off, vertical force above train.trial's contact threshold):
  force per body weight (x, y, z in ground) and vertical free moment per body
  weight and leg length, sine series sum_k b_k sin(k pi s), zero at heel
  strike and toe-off by construction; the centre of pressure relative to the
  ankle joint centre in the foot's frame per leg length (x, y, z), cosine
  series sum_k c_k cos(k pi s); ``stance_fraction`` = stance duration over the
  cycle's;
- body weight m g from the trial itself: the mean of both feet's vertical
  force over the cycle (steady treadmill walking).

Everything comes from the one leg's cycle, so the built gait is that leg's
walking with its own loads; both feet's average with a left-right symmetric
pelvis would be a gait nobody walked, whose hip frontal and transverse moments
differ markedly from the recorded right leg's (subject01 walks asymmetrically;
figures: docs/measurements.md).

    python scripts/fit_normative_kinetics.py [--data ../shared/data/opensim-gait2392]
        [--subject subject01.json] [--harmonics 20] [--pelvis-harmonics 8]
        [--out train/data/normative_kinetics.json]

``--subject`` (a five-coordinate subject.json) gives the leg that places the
ankle and the foot and the leg length; the default is calib's default subject.
The shipped file was fitted with subject01's own scaled model, whose leg the
data were recorded with (``calib-subject --osim
../shared/data/opensim-gait2392/subject01_simbody_adjusted.osim -o subject01.json``).
Prints the RMS fit error per quantity.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from calib import default_subject, load_subject
from firmware_bridge.normative_gait import SOURCE_HEEL_STRIKES_S, fourier_fit
from train.dynamics3d import PELVIS_COORDINATES, LegModel, leg_kinematics
from train.normative import DEFAULT_PATH, leg_length_m, stance_basis
from train.trial import TrialConfig, gait_events, load_both_legs, load_trial

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "opensim-gait2392"
RATE_HZ = 200.0
ABOUT_MEAN = ("pelvis_tx", "pelvis_tz")
"""Pelvis coordinates fitted about their cycle mean: the pelvis's place in the lab."""


def cycle_mask(leg, heel_strikes: tuple[float, float]) -> np.ndarray:
    """The samples of ``leg`` within the cycle [first, second heel strike] (s)."""
    return (leg.time >= heel_strikes[0]) & (leg.time <= heel_strikes[1])


def stance_samples(leg, model: LegModel, heel_strikes: tuple[float, float]):
    """(s, force (n, 3) N, free moment (n,) N m, COP from the ankle in the foot's frame (n, 3) m,
    stance fraction) of the stance that starts the cycle (heel strike to toe-off); the leg's
    own heel strikes (contact events) must lie within two samples of ``heel_strikes``."""
    strikes, offs = gait_events(leg)
    found = [strikes[np.abs(strikes - t) <= 2.0 / leg.rate_hz] for t in heel_strikes]
    if not all(f.size for f in found):
        raise SystemExit(
            f"the {leg.side} leg's heel strikes {np.round(strikes, 3).tolist()} s "
            f"do not bound the cycle {heel_strikes} s"
        )
    start, end = found[0][0], found[1][0]
    off = offs[offs > start][0]
    inside = (leg.time >= start) & (leg.time < off)
    zero6, zero5 = np.zeros(6), np.zeros(5)
    foot = leg_kinematics(model, leg.pelvis[inside], zero6, zero6, leg.q[inside], zero5, zero5)
    cop = np.einsum("nji,nj->ni", foot.orientation[:, 2], leg.cop[inside] - foot.joint_centre[:, 2])
    s = (leg.time[inside] - start) / (off - start)
    return s, leg.force[inside], leg.free_moment[inside, 1], cop, (off - start) / (end - start)


def body_weight_n(legs, heel_strikes: tuple[float, float]) -> float:
    """Mean total vertical force of both feet over the cycle (N)."""
    cycle = cycle_mask(legs[0], heel_strikes)
    return float(np.mean(sum(leg.force[cycle, 1] for leg in legs)))


def fit_series(s: np.ndarray, values: np.ndarray, harmonics: int, kind: str):
    """Least squares: sine series (k = 1..K) or cosine series (k = 0..K) of pi s."""
    basis = stance_basis(s, harmonics, kind)
    coefficients, *_ = np.linalg.lstsq(basis, values, rcond=None)
    residual = basis @ coefficients - values
    return coefficients.T, np.sqrt(np.mean(residual**2, axis=0))


def fit_pelvis(leg, heel_strikes: tuple[float, float], harmonics: int, length_m: float):
    """(mean (6,), cos (6, H), sin (6, H), RMS residual (6,)) of the pelvis over the cycle,
    ``ABOUT_MEAN`` coordinates about their cycle mean, translations per leg length."""
    cycle = cycle_mask(leg, heel_strikes)
    phase = (leg.time[cycle] - heel_strikes[0]) / (heel_strikes[1] - heel_strikes[0])
    values = leg.pelvis[cycle].copy()
    values[:, 3:] /= length_m
    about_mean = [PELVIS_COORDINATES.index(name) for name in ABOUT_MEAN]
    values[:, about_mean] -= values[:, about_mean].mean(axis=0)
    mean, cos, sin, rms = fourier_fit(phase, values, harmonics)
    mean[about_mean] = 0.0
    return mean, cos, sin, rms


def fit_kinetics(
    legs,
    kinematics,
    subject,
    heel_strikes: tuple[float, float],
    harmonics: int,
    pelvis_harmonics: int,
) -> tuple[dict, dict]:
    """The coefficient document and the RMS fit errors from ``legs`` (both legs of the trial,
    as train.trial loads them) and ``kinematics`` (the right leg unfiltered, for the pelvis)."""
    right = next(leg for leg in legs if leg.side == "r")
    weight = body_weight_n(legs, heel_strikes)
    length = leg_length_m(subject)
    s, force, free_moment, cop, fraction = stance_samples(
        right, LegModel.from_subject(subject), heel_strikes
    )
    force_coefficients, force_rms = fit_series(s, force / weight, harmonics, "sin")
    moment_coefficients, moment_rms = fit_series(
        s, free_moment / (weight * length), harmonics, "sin"
    )
    cop_coefficients, cop_rms = fit_series(s, cop / length, harmonics, "cos")
    pelvis_mean, pelvis_cos, pelvis_sin, pelvis_rms = fit_pelvis(
        kinematics, heel_strikes, pelvis_harmonics, length
    )
    document = {
        "schema_version": 2,
        "source": "OpenSim subject01_walk1 (gait2392 example data), right cycle "
        f"{heel_strikes[0]}-{heel_strikes[1]} s",
        "stance_fraction": float(fraction),
        "body_weight_n_of_source": weight,
        "leg_length_m_of_source": length,
        "force_per_body_weight_sin": force_coefficients.tolist(),
        "free_moment_per_body_weight_leg_length_sin": moment_coefficients.tolist(),
        "cop_from_ankle_in_foot_per_leg_length_cos": cop_coefficients.tolist(),
        "pelvis": {
            "names": list(PELVIS_COORDINATES),
            "mean": pelvis_mean.tolist(),
            "cos": pelvis_cos.tolist(),
            "sin": pelvis_sin.tolist(),
        },
        "description": (
            "stance phase s in [0,1] (heel strike to toe-off); F/(m g) = sum_k b[:, k-1] "
            "sin(k pi s), k = 1..K, rows x (anterior), y (up), z (right) in ground; "
            "T_y/(m g L) likewise (the free moment, vertical); (COP - ankle)/L = R_foot "
            "sum_k c[:, k] cos(k pi s), k = 0..K, rows x, y, z of the foot's frame; pelvis "
            "(gait phase phi, 0 = right heel strike) = mean + sum_k cos[:, k-1] cos(2 pi k phi) "
            "+ sin[:, k-1] sin(2 pi k phi): tilt, list, rotation rad, tx, ty, tz per leg length L "
            "(hip to ankle joint centre at the default pose), tx and tz about their cycle means"
        ),
    }
    errors = {
        "force per body weight (x, y, z)": force_rms,
        "free moment per body weight x leg length": moment_rms,
        "COP per leg length (foot x, y, z)": cop_rms,
        "pelvis (rad; per leg length)": pelvis_rms,
    }
    return document, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="opensim-gait2392 folder")
    parser.add_argument("--subject", type=Path, help="five-coordinate subject.json of the source")
    parser.add_argument(
        "--heel-strikes",
        type=float,
        nargs=2,
        default=SOURCE_HEEL_STRIKES_S,
        metavar=("T0_S", "T1_S"),
        help="the right cycle the pelvis is fitted over",
    )
    parser.add_argument(
        "--harmonics", type=int, default=20, help="terms per stance series (default 20)"
    )
    parser.add_argument(
        "--pelvis-harmonics",
        type=int,
        default=8,
        help="pelvis Fourier harmonics (default 8, as the joint angles)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH, help="coefficient file to write")
    args = parser.parse_args(argv)
    ik = args.data / "subject01_walk1_ik.mot"
    if not ik.is_file():
        print(f"fit_normative_kinetics: {ik} not found; pass --data", file=sys.stderr)
        return 2
    if args.harmonics < 1 or args.pelvis_harmonics < 1:
        print(
            "fit_normative_kinetics: need --harmonics >= 1 and --pelvis-harmonics >= 1",
            file=sys.stderr,
        )
        return 2
    subject = load_subject(args.subject) if args.subject else default_subject()
    files = (ik, args.data / "subject01_walk1_grf.mot", args.data / "subject01_walk1_grf.xml")
    legs = load_both_legs(*files, subject, RATE_HZ)
    kinematics = load_trial(*files, subject, RATE_HZ, "r", TrialConfig(kinematics_cutoff_hz=None))
    document, errors = fit_kinetics(
        legs, kinematics, subject, tuple(args.heel_strikes), args.harmonics, args.pelvis_harmonics
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    print(
        f"body weight {document['body_weight_n_of_source']:.1f} N, leg length "
        f"{document['leg_length_m_of_source']:.3f} m, stance {document['stance_fraction']:.3f}"
    )
    for what, rms in errors.items():
        print(f"RMS fit error, {what}: " + " ".join(f"{x:.4f}" for x in np.atleast_1d(rms)))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
