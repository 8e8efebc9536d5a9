"""Zero the sensors from a quiet standing capture.

A capture is a CSV file with a header row: one column per raw channel, plus
optionally a time column (``time``, ``t`` or ``timestamp``, ignored). Standing
quietly is OpenSim's default pose, every coordinate 0 rad, so each channel's
zero offset becomes its mean raw reading. A capture in which a measured coordinate
moves (standard deviation above ``max_std_deg``, in degrees after sign and
scale) is refused: zeroing on a moving leg would bias every later angle.

A capture in degrees where radians are expected is refused too (a knee standing at
5 degrees became a 5 rad offset): a joint channel whose mean, in radians after sign
and scale, lies beyond ``MAX_STANDING_RAD`` (45 degrees from OpenSim's zero pose)
without ``--sensors-in`` (the channels are then OpenSim radians, and quiet standing
is close to that pose), or beyond a full turn with it (a sensor's mounting offset can
be anything within a turn, no angle in radians lies beyond it).
"""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

import numpy as np

from calib.coordinates import COORDINATES, SAGITTAL_COORDINATES
from calib.sensors import Channel, SensorError, SensorMap

TIME_COLUMNS = ("time", "t", "timestamp")
DEFAULT_MAX_STD_DEG = 0.5
MIN_SAMPLES = 10
MAX_STANDING_RAD = math.pi / 4
"""Without a template, a standing channel's mean beyond this (rad) is not a standing pose."""


@dataclasses.dataclass(frozen=True)
class Capture:
    """Raw samples (N, C) of the channels named in ``channels``."""

    channels: tuple[str, ...]
    raw: np.ndarray


def read_capture(path: str | Path) -> Capture:
    """Read a capture CSV; raises ``SensorError`` saying what is wrong with it."""
    path = Path(path)
    try:
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise SensorError(f"cannot read capture {path}: {exc.strerror}") from exc
    rows = [r for r in rows if r and any(cell.strip() for cell in r)]
    if not rows:
        raise SensorError(f"capture {path} is empty: expected a header row of channel names")
    header = [h.strip() for h in rows[0]]
    keep = [i for i, h in enumerate(header) if h.lower() not in TIME_COLUMNS]
    if not keep:
        raise SensorError(f"capture {path} has no channel columns (header {header})")
    values = np.empty((len(rows) - 1, len(keep)))
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise SensorError(
                f"capture {path} line {n}: {len(row)} values, header has {len(header)}"
            )
        for k, i in enumerate(keep):
            try:
                values[n - 2, k] = float(row[i])
            except ValueError:
                raise SensorError(
                    f"capture {path} line {n}, column '{header[i]}': {row[i]!r} is not a number"
                ) from None
    if not np.all(np.isfinite(values)):
        raise SensorError(f"capture {path} contains NaN or infinite values")
    return Capture(tuple(header[i] for i in keep), values)


def zero_sensors(
    capture: Capture, template: SensorMap | None = None, max_std_deg: float = DEFAULT_MAX_STD_DEG
) -> SensorMap:
    """A sensor map whose zero offsets are the capture's means.

    ``template`` supplies the channels (names, coordinates, signs, scales); its
    channel names must all be capture columns. Without one, the capture must
    have exactly three channel columns, taken as hip_flexion, knee_angle,
    ankle_angle, or five, taken as ``COORDINATES``, in OpenSim radians (sign +1,
    scale 1).
    """
    if not math.isfinite(max_std_deg) or max_std_deg <= 0:
        raise SensorError(
            f"the motion threshold must be a positive number of degrees, got {max_std_deg}"
        )
    if len(capture.raw) < MIN_SAMPLES:
        raise SensorError(
            f"the capture has {len(capture.raw)} samples; at least {MIN_SAMPLES} are needed"
        )
    assumed = template is None
    if template is None:
        by_count = {len(SAGITTAL_COORDINATES): SAGITTAL_COORDINATES, len(COORDINATES): COORDINATES}
        if len(capture.channels) not in by_count:
            raise SensorError(
                f"the capture has {len(capture.channels)} channel columns "
                f"{list(capture.channels)}; "
                f"without --sensors-in exactly 3 ({', '.join(SAGITTAL_COORDINATES)}) or 5 "
                f"({', '.join(COORDINATES)}), in rad, are expected"
            )
        coordinates = by_count[len(capture.channels)]
        template = SensorMap(tuple(Channel(n, c) for n, c in zip(capture.channels, coordinates)))
    missing = [c.name for c in template.channels if c.name not in capture.channels]
    if missing:
        raise SensorError(
            f"the capture has no column for channel(s) {missing}; its columns are "
            f"{list(capture.channels)}"
        )
    _refuse_degrees(capture, template, MAX_STANDING_RAD if assumed else 2 * math.pi)
    channels = []
    moving = []
    for c in template.channels:
        raw = capture.raw[:, capture.channels.index(c.name)]
        if c.coordinate is not None:
            angle_deg = np.degrees(c.sign * c.scale * raw)
            std, span = float(np.std(angle_deg)), float(np.ptp(angle_deg))
            if std > max_std_deg:
                moving.append(f"{c.name} ({c.coordinate}) std {std:.2f} deg, range {span:.2f} deg")
        channels.append(dataclasses.replace(c, zero_offset=float(np.mean(raw))))
    if moving:
        raise SensorError(
            "the capture moves, stand still and capture again: "
            + "; ".join(moving)
            + f" (allowed std {max_std_deg:g} deg)"
        )
    return SensorMap(tuple(channels))


def _refuse_degrees(capture: Capture, template: SensorMap, limit_rad: float) -> None:
    """Refuse joint channels whose mean angle (rad, after sign and scale) exceeds ``limit_rad``."""
    for c in template.channels:
        if c.coordinate is None:
            continue
        mean_raw = float(np.mean(capture.raw[:, capture.channels.index(c.name)]))
        angle = c.sign * c.scale * mean_raw
        if abs(angle) > limit_rad:
            raise SensorError(
                f"the capture looks like degrees, not radians: channel {c.name} ({c.coordinate}) "
                f"reads {mean_raw:.4g} on average, {math.degrees(angle):.0f} deg as radians, "
                f"beyond the {math.degrees(limit_rad):.0f} deg a standing reading can be; "
                "convert the capture to radians, or give --sensors-in with that channel's "
                f"scale {math.pi / 180:.7f} (pi/180) if it streams degrees"
            )
