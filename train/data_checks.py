"""Wrong data caught before it trains or scores: each check fails with one line that names
the file, the value and the fix.

- ``trial_overlap``: the span an IK and a GRF file share, which is all a trial can use
  (kinetics exist only there), and ``Overlap.describe`` says in one line what was kept
  and what was dropped, so a GRF that covers a quarter of the IK cannot shrink a
  trial unnoticed.
- ``check_duration``: a trial (or recording) too short for one network window is
  refused with its length and the minimum.
- ``check_span``: ``--start``/``--end`` outside the data are refused instead of being
  cut to what exists.
- ``read_ik``: an IK file whose joint angles contradict its header's unit. Radians read
  as degrees shrink a walking knee's 60 degrees to about one, and every torque with
  them, without failing anywhere (the only hint was a 36 N m ankle residual). Refused:
  a header saying degrees over leg-joint angles that all stay within +-pi and of which
  none moves ``MIN_JOINT_RANGE_DEG`` (5 degrees) over the trial; a header saying
  radians over a leg joint that moves more than pi (half a turn) over the trial. The
  ``--angles-in`` option overrides the header (and these checks) for a file that is
  right after all, a nearly still trial in degrees for one. ``read_storage`` itself
  already refuses radians beyond a full turn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from train.options import ANGLE_UNITS as ANGLE_UNIT_NAMES

TIME_TOLERANCE_S = 1e-5
"""OpenSim writes times such as 2.4999985 for 2.5: spans are compared to 10 microseconds."""
MIN_JOINT_RANGE_DEG = 5.0
"""Below this range on every leg joint, 'degrees' over values within +-pi are radians."""
ANGLE_UNITS = dict(zip(ANGLE_UNIT_NAMES, (True, False)))
"""--angles-in choices and the ``angles_in_degrees`` each means."""


class DataError(ValueError):
    """Data that cannot serve as asked; the message names the file or value and the fix."""


@dataclass(frozen=True)
class Overlap:
    """The time spans (s) of an IK and a GRF file and the span both cover."""

    ik_path: str
    ik_span: tuple[float, float]
    grf_path: str
    grf_span: tuple[float, float]

    @property
    def kept(self) -> tuple[float, float]:
        return max(self.ik_span[0], self.grf_span[0]), min(self.ik_span[1], self.grf_span[1])

    @property
    def duration_s(self) -> float:
        return max(self.kept[1] - self.kept[0], 0.0)

    def dropped(self) -> list[str]:
        """What of each file lies outside the kept span, as 'IK 2.500-4.000 s'."""
        lo, hi = self.kept
        parts = []
        for name, (start, end) in (("IK", self.ik_span), ("GRF", self.grf_span)):
            if start < lo - TIME_TOLERANCE_S:
                parts.append(f"{name} {start:.3f}-{min(end, lo):.3f} s")
            if end > hi + TIME_TOLERANCE_S:
                parts.append(f"{name} {max(start, hi):.3f}-{end:.3f} s")
        return parts

    def describe(self, units: str = "") -> str:
        """One line: both files' spans, the span kept, what was dropped, and ``units``."""
        lo, hi = self.kept
        dropped = self.dropped()
        return (
            f"IK {Path(self.ik_path).name} {self.ik_span[0]:.3f}-{self.ik_span[1]:.3f} s, "
            f"GRF {Path(self.grf_path).name} {self.grf_span[0]:.3f}-{self.grf_span[1]:.3f} s: "
            f"kept {lo:.3f}-{hi:.3f} s"
            + (f", dropped {', '.join(dropped)}" if dropped else ", nothing dropped")
            + (f"; {units}" if units else "")
        )


def trial_overlap(
    ik_path: str | Path, grf_path: str | Path | None, loads_path: str | Path
) -> Overlap:
    """The spans of the IK and GRF files a trial is loaded from (``grf_path`` None: the file
    the ExternalLoads names, as ``train.trial.load_trial`` takes it)."""
    from train.opensim_io import read_external_loads, read_storage

    if grf_path is None:
        specs = read_external_loads(loads_path)
        grf_path = next((s.datafile for s in specs if s.datafile), None)
        if not grf_path:
            raise DataError(f"{loads_path} names no GRF data file; pass the GRF .mot with --grf")
    ik_time = read_storage(ik_path).time
    grf_time = read_storage(grf_path).time
    return Overlap(
        ik_path=str(ik_path),
        ik_span=(float(ik_time[0]), float(ik_time[-1])),
        grf_path=str(grf_path),
        grf_span=(float(grf_time[0]), float(grf_time[-1])),
    )


def check_trial_files(
    ik_path: str | Path,
    grf_path: str | Path | None,
    loads_path: str | Path,
    coordinates: tuple[str, ...],
    sides: tuple[str, ...],
    angles_in_degrees: bool | None = None,
) -> Overlap:
    """Check a trial's files before ``train.trial.load_trial`` reads them: the IK's unit on
    the legs' ``coordinates`` (``read_ik``); returns the IK-GRF overlap."""
    read_ik(ik_path, leg_coordinates(coordinates, sides), angles_in_degrees)
    return trial_overlap(ik_path, grf_path, loads_path)


def samples_in(duration_s: float, rate_hz: float) -> int:
    """Uniform samples at ``rate_hz`` from the start of a span of ``duration_s`` to its end."""
    if duration_s < 0:
        return 0
    return math.floor(duration_s * rate_hz + TIME_TOLERANCE_S) + 1


def check_duration(
    what: str, duration_s: float, rate_hz: float, needed_samples: int, why: str
) -> None:
    """Refuse ``what`` (a file or trial, named) if it has fewer than ``needed_samples`` at
    ``rate_hz``; ``why`` says what needs them (e.g. 'one window of 20 rows')."""
    have = samples_in(duration_s, rate_hz)
    if have < needed_samples:
        raise DataError(
            f"{what} is {max(duration_s, 0.0):.3f} s long ({have} samples at {rate_hz:g} Hz), "
            f"shorter than {why} needs: {needed_samples} samples "
            f"({(needed_samples - 1) / rate_hz:.3f} s); give a longer recording"
        )


def check_span(
    start_s: float | None,
    end_s: float | None,
    available: tuple[float, float],
    what: str,
) -> None:
    """Refuse --start/--end outside ``available`` (s), the span ``what`` covers."""
    lo, hi = available
    if start_s is not None and end_s is not None and not start_s < end_s:
        raise DataError(f"--start {start_s:g} s is not before --end {end_s:g} s")
    if start_s is not None and not lo - TIME_TOLERANCE_S <= start_s < hi:
        raise DataError(
            f"--start {start_s:g} s is outside the data: {what} covers {lo:.3f}-{hi:.3f} s; "
            f"give --start between {lo:.3f} and {hi:.3f}"
        )
    if end_s is not None and not lo < end_s <= hi + TIME_TOLERANCE_S:
        raise DataError(
            f"--end {end_s:g} s is outside the data: {what} covers {lo:.3f}-{hi:.3f} s; "
            f"give --end between {lo:.3f} and {hi:.3f}"
        )


def leg_coordinates(coordinates: tuple[str, ...], sides: tuple[str, ...] = ("r", "l")) -> list[str]:
    """The IK columns of ``coordinates`` (a subject's right-leg names, ending in _r) on
    ``sides``."""
    columns = []
    for side in sides:
        for name in coordinates:
            base = name[:-2] if name.endswith(("_r", "_l")) else name
            columns.append(f"{base}_{side}")
    return columns


def read_ik(path: str | Path, columns: list[str], angles_in_degrees: bool | None = None):
    """The IK storage at ``path``, its unit checked on ``columns`` (module doc) unless
    ``angles_in_degrees`` says which unit it is."""
    from train.opensim_io import read_storage

    storage = read_storage(path, angles_in_degrees=angles_in_degrees)
    if angles_in_degrees is None:
        check_angle_units(storage, [c for c in columns if storage.has_column(c)])
    return storage


def check_angle_units(storage, columns: list[str]) -> None:
    """Refuse joint angles whose values contradict the file's unit (module doc)."""
    if not columns:
        return
    values = storage.columns_of(columns)
    ranges = values.max(axis=0) - values.min(axis=0)
    widest = int(ranges.argmax())
    if storage.in_degrees:
        largest = float(abs(values).max())
        if largest <= math.pi and ranges[widest] < MIN_JOINT_RANGE_DEG:
            raise DataError(
                f"{storage.path}: the header says degrees but the leg's joint angles stay "
                f"within +-{largest:.3g} and {columns[widest]}, the one that moves most, spans "
                f"only {ranges[widest]:.3g} over the trial: these are radians. Fix the header "
                "(inDegrees=no) or pass --angles-in radians (--angles-in degrees for a trial "
                "that really is this still)"
            )
    elif ranges[widest] > math.pi:
        raise DataError(
            f"{storage.path}: the header says radians but {columns[widest]} spans "
            f"{ranges[widest]:.4g} over the trial, more than half a turn: these are degrees. "
            "Fix the header (inDegrees=yes) or pass --angles-in degrees"
        )
