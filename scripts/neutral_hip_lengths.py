"""How much muscle-tendon length a sagittal device's neutral hip ignores.

edge-run evaluates the Hill model at the subject's whole pose; a device that
measures only hip flexion, knee and ankle leaves hip adduction and rotation at
0. This prints, over a recorded trial, the largest difference per muscle
between the lengths at the recorded pose and at that pose with the hip's
adduction and rotation set to 0.

    python scripts/neutral_hip_lengths.py --subject subject.json --ik trial_ik.mot [--side r]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from calib.coordinates import COORDINATES, PAPER_MUSCLES, opensim_coordinate
from calib.subject import load_subject
from train.opensim_io import read_storage

NEUTRAL = ("hip_adduction", "hip_rotation")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subject", required=True, help="a five-coordinate subject.json")
    parser.add_argument("--ik", required=True, help="an OpenSim IK .mot of the trial")
    parser.add_argument("--side", choices=("r", "l"), default="r")
    args = parser.parse_args(argv)
    subject = load_subject(args.subject)
    side = "right" if args.side == "r" else "left"
    q = read_storage(args.ik).angles_radians([opensim_coordinate(c, side) for c in COORDINATES])
    neutral = q.copy()
    neutral[:, [COORDINATES.index(c) for c in NEUTRAL]] = 0.0
    lengths = subject.muscle_tendon_length(q)
    difference_mm = np.abs(lengths - subject.muscle_tendon_length(neutral)).max(axis=0) * 1e3
    for c in NEUTRAL:
        k = COORDINATES.index(c)
        print(f"{c}: {np.degrees(q[:, k].min()):.1f} .. {np.degrees(q[:, k].max()):.1f} deg")
    print(f"{'muscle':<14}{'max |dl| mm':>12}{'% of length':>13}")
    relative = difference_mm / (lengths.mean(axis=0) * 1e3) * 100
    for i in np.argsort(difference_mm)[::-1]:
        mark = "  (paper)" if subject.muscle_names[i] in PAPER_MUSCLES else ""
        print(f"{subject.muscle_names[i]:<14}{difference_mm[i]:>12.1f}{relative[i]:>13.1f}{mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
