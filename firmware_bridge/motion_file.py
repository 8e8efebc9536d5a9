"""Read joint angles from an OpenSim motion file (.mot/.sto) for the simulator to play.

A small reader of its own: firmware_bridge runs on the device beside edge/ and
must not import train/ (whose full storage reader this mirrors for the one case
needed here: named angle columns, converted to radians).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class MotionFileError(ValueError):
    """A motion file that cannot be played; the message names the file and the problem."""


def read_joint_angles(
    path: str | Path, joint_names: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """(time (N,) s, angles (N, len(joint_names)) rad) from an OpenSim storage file.

    Angles are converted from degrees when the header says `inDegrees=yes`; a file
    without that line is taken to be in degrees when any angle exceeds 2π in magnitude.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise MotionFileError(f"{path}: cannot read the motion file ({exc.strerror})") from None
    try:
        end = next(i for i, line in enumerate(lines) if line.strip().lower() == "endheader")
    except StopIteration:
        raise MotionFileError(f"{path}: no 'endheader' line; not an OpenSim storage file") from None
    in_degrees = None
    for line in lines[:end]:
        key, _, value = line.partition("=")
        if key.strip().lower() == "indegrees":
            in_degrees = value.strip().lower() == "yes"
    body = [line for line in lines[end + 1 :] if line.strip()]
    if len(body) < 3:
        raise MotionFileError(f"{path}: fewer than two data rows after the column labels")
    labels = body[0].split()
    missing = [name for name in joint_names if name not in labels]
    if missing:
        raise MotionFileError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"the file has: {', '.join(labels[:30])}"
        )
    try:
        data = np.array([row.split() for row in body[1:]], dtype=float)
    except ValueError:
        raise MotionFileError(f"{path}: rows of unequal width or non-numeric values") from None
    if data.ndim != 2 or data.shape[1] != len(labels):
        raise MotionFileError(f"{path}: rows do not have {len(labels)} values like the labels")
    time = data[:, 0]
    if not np.all(np.diff(time) > 0):
        raise MotionFileError(f"{path}: time does not strictly increase")
    angles = data[:, [labels.index(name) for name in joint_names]]
    if in_degrees is None:
        in_degrees = bool(np.nanmax(np.abs(angles)) > 2 * np.pi)
    return time, np.deg2rad(angles) if in_degrees else angles
