"""Fit the built-in normative gait cycle (Fourier coefficients) to one real right gait cycle.

Reads OpenSim's subject01_walk1 IK (shared data), takes the cycle between two
right heel strikes (0.618 s and 1.853 s, vertical GRF > 20 N), fits each of
hip_flexion_r, knee_angle_r, ankle_angle_r and (a second block)
hip_adduction_r, hip_rotation_r as a Fourier series of the phase by least
squares, and writes firmware_bridge/data/normative_gait.json. The pelvis's
motion and the loads, which scale with the subject, are fitted by
scripts/fit_normative_kinetics.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from firmware_bridge.motion_file import MotionFileError, read_joint_angles
from firmware_bridge.normative_gait import (
    DEFAULT_PATH,
    HIP_NAMES,
    JOINT_NAMES,
    SOURCE_HEEL_STRIKES_S,
    HipSeries,
    NormativeGait,
    fourier_fit,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MOT = REPO.parent / "shared" / "data" / "opensim-gait2392" / "subject01_walk1_ik.mot"


def fit(
    time_s: np.ndarray, angles: np.ndarray, heel_strikes: tuple[float, float], harmonics: int
) -> tuple[NormativeGait, np.ndarray]:
    """Least-squares Fourier fit over one cycle of ``angles`` (N, 5): the sagittal
    ``JOINT_NAMES`` then ``HIP_NAMES``; returns the gait and RMS residual per column."""
    start, end = heel_strikes
    period = end - start
    inside = (time_s >= start) & (time_s <= end)
    phase = (time_s[inside] - start) / period
    sagittal = fourier_fit(phase, angles[inside, : len(JOINT_NAMES)], harmonics)
    hip = fourier_fit(phase, angles[inside, len(JOINT_NAMES) :], harmonics)
    gait = NormativeGait(
        joint_names=JOINT_NAMES,
        period_s=round(period, 6),
        mean=sagittal[0],
        cos=sagittal[1],
        sin=sagittal[2],
        hip=HipSeries(*hip[:3]),
    )
    return gait, np.concatenate([sagittal[3], hip[3]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mot", type=Path, default=DEFAULT_MOT, help="IK motion file")
    parser.add_argument(
        "--heel-strikes",
        type=float,
        nargs=2,
        default=SOURCE_HEEL_STRIKES_S,
        metavar=("T0_S", "T1_S"),
        help="two successive right heel strikes (s)",
    )
    parser.add_argument("--harmonics", type=int, default=8, help="Fourier harmonics per joint")
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH, help="coefficient file")
    args = parser.parse_args(argv)
    if args.harmonics < 1 or args.heel_strikes[1] <= args.heel_strikes[0]:
        print(
            "error: need --harmonics >= 1 and the second heel strike after the first",
            file=sys.stderr,
        )
        return 2
    names = JOINT_NAMES + HIP_NAMES
    try:
        time_s, angles = read_joint_angles(args.mot, names)
    except MotionFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    gait, rms = fit(time_s, angles, tuple(args.heel_strikes), args.harmonics)
    document = gait.to_json()
    document["source"] = {
        "file": args.mot.name,
        "heel_strikes_s": list(args.heel_strikes),
        "harmonics": args.harmonics,
        "fit_rms_deg": {n: round(float(np.rad2deg(r)), 4) for n, r in zip(names, rms)},
        "credit": "OpenSim gait2392 subject01_walk1 (opensim-models, CC BY 3.0)",
    }
    args.out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print(
        f"wrote {args.out}; period {gait.period_s} s; fit RMS (deg): "
        + ", ".join(f"{n} {np.rad2deg(r):.3f}" for n, r in zip(names, rms))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
