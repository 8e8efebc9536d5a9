"""A walking trial per leg at the model's sample rate, from OpenSim's IK, GRF and
ExternalLoads files.

What a leg's trial holds (SI units, OpenSim's ground axes: x forward, y up,
z to the right):

- ``q`` (N, 5): the leg's coordinates in ``calib.COORDINATES`` order
  (hip_flexion, hip_adduction, hip_rotation, knee_angle, ankle_angle), rad.
  An IK file without hip adduction or rotation leaves them at 0, and
  ``measured`` says which coordinates the file held.
- ``pelvis`` (N, 6): pelvis_tilt, pelvis_list, pelvis_rotation (rad) and
  pelvis_tx, pelvis_ty, pelvis_tz (m), the moving base of the leg; list,
  rotation and tz are 0 when the file lacks them.
- ``force`` (N, 3) N and ``cop`` (N, 3) m: that foot's ground reaction force and
  its centre of pressure on the floor, in ground; ``free_moment`` (N, 3) N m, the
  couple about the vertical through the COP that completes the plate's wrench.
- ``contact`` (N,): vertical force above ``contact_threshold_n`` (20 N by
  default, the threshold that places this trial's heel strikes at 0.618 s and
  1.853 s). Below it the centre of pressure is meaningless and the foot is
  free: force, COP and free moment 0.

The left leg is mirrored into the right leg's world (z -> -z): OpenSim's left
hip adduction and rotation turn about -x and -y, so the mirrored left leg is
the right leg's model with the same coordinate values; the pelvis's list,
rotation and tz, the force's and COP's z and the free moment's x and y change
sign (a moment is a pseudovector). Both legs are then samples of one model.

Processing (``TrialConfig``):
- joint and pelvis coordinates: low-pass, ``kinematics_cutoff_hz`` = 6 Hz by default,
  as OpenSim's static optimisation of this trial filters them (so physics torques
  match the reference), then a cubic spline to the model's time grid;
- GRF: the plate's wrench (all forces acting on that foot, their points and
  torques) is reduced to one force at the centre of pressure on the floor plus
  a vertical free moment, then low-pass filtered at ``grf_cutoff_hz`` = 15 Hz
  before resampling (linear interpolation of the filtered signal);
- every low-pass is a 2nd-order Butterworth run forwards and backwards
  (``scipy.signal.sosfiltfilt``): zero phase, 4th-order roll-off;
- contact is decided on the unfiltered vertical force (filtering would smear
  heel strike earlier); the centre of pressure is computed where the foot is
  loaded and bridged linearly across the unloaded stretches before filtering,
  so garbage COP from an unloaded plate never leaks into stance.

``noncausal_derivatives`` gives the best (non-causal) q̇, q̈ for the physics
loss; the network's inputs use the causal estimator in ``edge.derivatives``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.signal import butter, savgol_filter, sosfiltfilt

from calib.coordinates import COORDINATES, SAGITTAL_COORDINATES
from train.dynamics3d import PELVIS_COORDINATES, LegModel, leg_kinematics
from train.opensim_io import ExternalForceSpec, Storage, read_external_loads, read_storage
from train.options import KINEMATICS_CUTOFF_HZ, SIDES

__all__ = [
    "LegTrial",
    "TrialConfig",
    "TrialError",
    "gait_events",
    "load_both_legs",
    "load_trial",
    "lowpass",
    "noncausal_derivatives",
]

_REQUIRED_PELVIS = ("pelvis_tilt", "pelvis_tx", "pelvis_ty")
FREE_MOMENT = "free_moment"
"""The name ``LegTrial.measured`` gives the GRF file's torque columns."""

# Savitzky–Golay derivative: a quartic over ~0.1 s centred on each sample; its
# passband (≈ 20 Hz at 100 Hz) keeps gait's content, the window bounds the noise gain.
_DERIVATIVE_WINDOW_S = 0.1
_DERIVATIVE_POLYORDER = 4

# The mirror z -> -z: which columns of pelvis, force, COP and free moment change sign.
_MIRROR_PELVIS = np.array([1.0, -1.0, -1.0, 1.0, 1.0, -1.0])
_MIRROR_VECTOR = np.array([1.0, 1.0, -1.0])
_MIRROR_PSEUDOVECTOR = np.array([-1.0, -1.0, 1.0])


class TrialError(ValueError):
    """IK, GRF and loads files that do not make a trial; the message says which file and what
    to change."""


@dataclass(frozen=True)
class TrialConfig:
    """How a trial is filtered, where a foot counts as loaded and how far the COP may stray."""

    kinematics_cutoff_hz: float | None = KINEMATICS_CUTOFF_HZ
    grf_cutoff_hz: float = 15.0
    contact_threshold_n: float = 20.0
    filter_order: int = 2
    max_cop_distance_m: float = 0.3
    """The farthest (horizontally) a loaded foot's centre of pressure may lie from the
    foot's heel-to-toe line (ankle to mtp joint centre); farther means the GRF and the
    kinematics disagree (another foot's plate, another frame, a mirrored axis)."""

    def __post_init__(self) -> None:
        if self.kinematics_cutoff_hz is not None and not self.kinematics_cutoff_hz > 0:
            raise TrialError(
                f"kinematics_cutoff_hz must be > 0 Hz or None, got {self.kinematics_cutoff_hz}"
            )
        if not self.grf_cutoff_hz > 0:
            raise TrialError(f"grf_cutoff_hz must be > 0 Hz, got {self.grf_cutoff_hz}")
        if not self.contact_threshold_n > 0:
            raise TrialError(f"contact_threshold_n must be > 0 N, got {self.contact_threshold_n}")
        if self.filter_order < 1:
            raise TrialError(f"filter_order must be >= 1, got {self.filter_order}")
        if not self.max_cop_distance_m > 0:
            raise TrialError(f"max_cop_distance_m must be > 0 m, got {self.max_cop_distance_m}")


@dataclass(frozen=True, eq=False)
class LegTrial:
    """One leg's trial at ``rate_hz``, uniform samples from ``time[0]``; see the module docstring.

    ``measured``: the coordinates (``calib.COORDINATES`` and pelvis names) the IK
    file held and ``"free_moment"`` when the GRF file has torque columns; what is
    not measured is 0.
    """

    time: np.ndarray
    q: np.ndarray
    pelvis: np.ndarray
    force: np.ndarray
    cop: np.ndarray
    free_moment: np.ndarray
    contact: np.ndarray
    side: str
    rate_hz: float
    measured: tuple[str, ...] = COORDINATES + PELVIS_COORDINATES + (FREE_MOMENT,)
    source: tuple[str, ...] = ()
    variant: str = "recorded"

    def __post_init__(self) -> None:
        n = self.time.shape[0]
        for name, width in self._widths().items():
            array = getattr(self, name)
            shape = (n,) if width is None else (n, width)
            if array.shape != shape:
                raise TrialError(f"LegTrial.{name} has shape {array.shape}, expected {shape}")
        if self.side not in SIDES:
            raise TrialError(f"LegTrial.side must be 'r' or 'l', got {self.side!r}")
        if not self.rate_hz > 0:
            raise TrialError(f"LegTrial.rate_hz must be > 0, got {self.rate_hz}")

    @staticmethod
    def _widths() -> dict[str, int | None]:
        return {
            "time": None,
            "q": len(COORDINATES),
            "pelvis": len(PELVIS_COORDINATES),
            "force": 3,
            "cop": 3,
            "free_moment": 3,
            "contact": None,
        }

    @property
    def n_samples(self) -> int:
        return int(self.time.shape[0])

    @property
    def duration_s(self) -> float:
        return (self.n_samples - 1) / self.rate_hz

    def missing(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """Those of ``names`` the trial's files did not hold."""
        return tuple(name for name in names if name not in self.measured)

    def segment(self, start: int, stop: int, variant: str | None = None) -> LegTrial:
        """Samples [start, stop) as a trial of their own, time kept."""
        if not 0 <= start < stop <= self.n_samples:
            raise TrialError(f"segment [{start}, {stop}) outside 0..{self.n_samples}")
        cut = {name: getattr(self, name)[start:stop].copy() for name in self._widths()}
        return replace(self, **cut, variant=variant if variant is not None else self.variant)


def only_in_contact(
    contact: np.ndarray, force: np.ndarray, cop: np.ndarray, free_moment: np.ndarray
) -> dict[str, np.ndarray]:
    """A foot's ground loads (each (N, 3)) with the rows outside ``contact`` (N,) set to 0,
    as ``LegTrial``'s ``force``, ``cop`` and ``free_moment``: the ground acts only in stance."""
    swing = ~np.asarray(contact, dtype=bool)[:, None]
    loads = {"force": force, "cop": cop, "free_moment": free_moment}
    return {name: np.where(swing, 0.0, value) for name, value in loads.items()}


def load_trial(
    ik_path: str | Path,
    grf_path: str | Path | None,
    loads_path: str | Path,
    subject,
    rate_hz: float = 100.0,
    side: str = "r",
    config: TrialConfig | None = None,
    angles_in_degrees: bool | None = None,
) -> LegTrial:
    """One leg of a trial over the common time span of IK and GRF, at ``rate_hz``.

    ``subject`` (``calib.Subject``) places the hip in the pelvis and the foot whose
    centre of pressure is checked. ``grf_path`` None takes the data file the
    ExternalLoads names. ``angles_in_degrees`` overrides the IK header's unit
    (see ``read_storage``).
    """
    config = config or TrialConfig()
    if side not in SIDES:
        raise TrialError(f"side must be 'r' or 'l', got {side!r}")
    if not rate_hz > 0:
        raise TrialError(f"rate_hz must be > 0, got {rate_hz}")
    ik = read_storage(ik_path, angles_in_degrees=angles_in_degrees)
    specs = _foot_specs(read_external_loads(loads_path), side, loads_path)
    if grf_path is None:
        grf_path = specs[0].datafile
        if not grf_path:
            raise TrialError(f"{loads_path} names no GRF data file; pass the GRF .mot explicitly")
    grf = read_storage(grf_path)

    t0 = max(ik.time[0], grf.time[0])
    t1 = min(ik.time[-1], grf.time[-1])
    n = math.floor(float(t1 - t0) * rate_hz + 1e-6) + 1 if t1 > t0 else 0
    if n < 2 * _derivative_window(rate_hz):
        raise TrialError(
            f"IK ({ik_path}) covers {ik.time[0]:.4g}–{ik.time[-1]:.4g} s and GRF ({grf_path}) "
            f"{grf.time[0]:.4g}–{grf.time[-1]:.4g} s: they overlap for too short a time "
            f"({max(t1 - t0, 0.0):.3g} s) to make a trial at {rate_hz:g} Hz"
        )
    time = t0 + np.arange(n) / rate_hz

    q, leg_measured = _coordinates(
        ik,
        [f"{c}_{side}" for c in COORDINATES],
        [f"{c}_{side}" for c in SAGITTAL_COORDINATES],
        time,
        config,
    )
    pelvis, pelvis_measured = _coordinates(
        ik, list(PELVIS_COORDINATES), list(_REQUIRED_PELVIS), time, config
    )
    force, cop, free_moment, contact = _foot_load(grf, specs, time, config)
    if side == "l":
        pelvis = pelvis * _MIRROR_PELVIS
        force, cop = force * _MIRROR_VECTOR, cop * _MIRROR_VECTOR
        free_moment = free_moment * _MIRROR_PSEUDOVECTOR
    measured = tuple(c for c, m in zip(COORDINATES, leg_measured) if m)
    measured += tuple(c for c, m in zip(PELVIS_COORDINATES, pelvis_measured) if m)
    if all(spec.torque_columns for spec in specs):
        measured += (FREE_MOMENT,)
    trial = LegTrial(
        time=time,
        q=q,
        pelvis=pelvis,
        force=force,
        cop=cop,
        free_moment=free_moment,
        contact=contact,
        side=side,
        rate_hz=float(rate_hz),
        measured=measured,
        source=(str(ik_path), str(grf_path), str(loads_path)),
    )
    check_cop_under_foot(
        trial,
        LegModel.from_subject(subject),
        config.max_cop_distance_m,
        what=f"{grf_path} ({', '.join(specs[0].point_columns)})",
    )
    return trial


def load_both_legs(
    ik_path,
    grf_path,
    loads_path,
    subject,
    rate_hz: float = 100.0,
    config: TrialConfig | None = None,
    angles_in_degrees: bool | None = None,
) -> list[LegTrial]:
    """The right and the left leg of one trial (the left mirrored into the right's world)."""
    return [
        load_trial(ik_path, grf_path, loads_path, subject, rate_hz, side, config, angles_in_degrees)
        for side in SIDES
    ]


def check_cop_under_foot(
    trial: LegTrial, model: LegModel, max_distance_m: float, what: str = "the GRF"
) -> None:
    """Refuse a loaded centre of pressure farther than ``max_distance_m`` (horizontally)
    from the foot's heel-to-toe line (ankle to mtp joint centre), naming the first time."""
    if not trial.contact.any():
        return
    zero6, zero5 = np.zeros(6), np.zeros(5)
    loaded = np.flatnonzero(trial.contact)
    centres = leg_kinematics(
        model, trial.pelvis[loaded], zero6, zero6, trial.q[loaded], zero5, zero5
    ).joint_centre
    heel, toe = centres[:, 2, [0, 2]], centres[:, 3, [0, 2]]
    point = trial.cop[loaded][:, [0, 2]]
    line = toe - heel
    along = np.clip(
        np.einsum("ni,ni->n", point - heel, line)
        / np.maximum(np.einsum("ni,ni->n", line, line), 1e-12),
        0.0,
        1.0,
    )
    distance = np.linalg.norm(point - (heel + along[:, None] * line), axis=1)
    far = np.flatnonzero(distance > max_distance_m)
    if far.size:
        k = far[0]
        raise TrialError(
            f"{what}: at {trial.time[loaded[k]]:.3f} s the "
            f"{'left' if trial.side == 'l' else 'right'} foot's centre of pressure lies "
            f"{distance[k]:.2f} m from the foot (more than {max_distance_m:g} m): the GRF does "
            "not belong to this foot or is in another frame; check which plate the "
            "ExternalLoads assigns to which calcn and that the GRF is in ground"
        )


def noncausal_derivatives(q: np.ndarray, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Best non-causal q̇, q̈ of uniform samples (along axis 0), same shape as ``q``.

    Savitzky–Golay central derivatives: a 4th-degree polynomial least-squares fit
    over ~0.1 s around each sample (11 samples at 100 Hz), differentiated; the
    first and last half-windows use the fit of the edge window. Units: q's per s and per s².
    """
    q = np.asarray(q, dtype=np.float64)
    window = _derivative_window(rate_hz)
    if q.shape[0] < window:
        raise TrialError(
            f"noncausal_derivatives needs at least {window} samples at {rate_hz:g} Hz, "
            f"got {q.shape[0]}"
        )
    dt = 1.0 / rate_hz
    qd = savgol_filter(q, window, _DERIVATIVE_POLYORDER, deriv=1, delta=dt, axis=0, mode="interp")
    qdd = savgol_filter(q, window, _DERIVATIVE_POLYORDER, deriv=2, delta=dt, axis=0, mode="interp")
    return qd, qdd


def gait_events(trial: LegTrial) -> tuple[np.ndarray, np.ndarray]:
    """(heel strikes, toe-offs) in s: the first sample of each contact and of each swing."""
    contact = trial.contact.astype(np.int8)
    change = np.diff(contact)
    strikes = trial.time[1:][change == 1]
    offs = trial.time[1:][change == -1]
    return strikes, offs


def lowpass(x: np.ndarray, rate_hz: float, cutoff_hz: float, order: int = 2) -> np.ndarray:
    """Zero-phase Butterworth low-pass along axis 0 (``order`` per pass, run forwards and
    backwards)."""
    if not cutoff_hz < rate_hz / 2:
        raise TrialError(
            f"cut-off {cutoff_hz:g} Hz is not below the Nyquist frequency of data at {rate_hz:g} Hz"
        )
    sos = butter(order, cutoff_hz, btype="low", fs=rate_hz, output="sos")
    padlen = min(3 * (2 * sos.shape[0] + 1), x.shape[0] - 1)
    return sosfiltfilt(sos, x, axis=0, padlen=padlen)


def _derivative_window(rate_hz: float) -> int:
    window = round(_DERIVATIVE_WINDOW_S * float(rate_hz))
    window += 1 - window % 2
    return max(window, _DERIVATIVE_POLYORDER + 3)


def _foot_specs(specs: list[ExternalForceSpec], side: str, loads_path) -> list[ExternalForceSpec]:
    feet = [s for s in specs if s.enabled and s.side == side]
    if not feet:
        found = ", ".join(f"{s.name or '?'} on {s.applied_to_body}" for s in specs) or "none"
        raise TrialError(
            f"{loads_path}: no enabled external force on the {'right' if side == 'r' else 'left'} "
            f"foot (calcn_{side}, talus_{side} or toes_{side}); the file has: {found}"
        )
    for spec in feet:
        for what, frame in (
            ("force", spec.force_expressed_in_body),
            ("point", spec.point_expressed_in_body),
        ):
            if frame.lower() != "ground":
                raise TrialError(
                    f"{loads_path}: {spec.name}'s {what} is expressed in {frame!r}; only "
                    "ground-frame GRFs are supported (export the force plate data in the "
                    "lab/ground frame)"
                )
        if not all(spec.point_columns):
            raise TrialError(
                f"{loads_path}: {spec.name} names no point (centre of pressure) columns"
            )
    return feet


def _uniform(storage: Storage) -> tuple[np.ndarray, float]:
    """The file's own time grid made uniform at its mean rate (identity for uniform files)."""
    rate = storage.rate_hz
    n = round(float(storage.time[-1] - storage.time[0]) * rate) + 1
    return storage.time[0] + np.arange(n) / rate, rate


def resample_kinematics(
    storage: Storage, values: np.ndarray, time: np.ndarray, config: TrialConfig
) -> np.ndarray:
    """``values`` (rows of ``storage``) at ``time``: spline onto the file's own uniform grid,
    low-pass there at ``config.kinematics_cutoff_hz`` (if set), spline onto ``time``."""
    grid, rate = _uniform(storage)
    on_grid = CubicSpline(storage.time, values, axis=0)(grid)
    if config.kinematics_cutoff_hz is not None:
        on_grid = lowpass(on_grid, rate, config.kinematics_cutoff_hz, config.filter_order)
    return CubicSpline(grid, on_grid, axis=0)(time)


def _coordinates(
    storage: Storage, columns: list[str], required: list[str], time: np.ndarray, config: TrialConfig
) -> tuple[np.ndarray, list[bool]]:
    """The ``columns`` at ``time`` (angles in rad, translations in m), resampled and
    filtered by ``resample_kinematics``; absent optional columns are 0. Returns the
    values and which columns the file held; a missing ``required`` column raises."""
    storage.columns_of(required)  # names every missing required column at once
    present = [storage.has_column(c) for c in columns]
    values = np.zeros((time.size, len(columns)))
    held = [c for c, p in zip(columns, present) if p]
    raw = np.column_stack(
        [storage.column_radians(c) if _is_angle(c) else storage.column(c) for c in held]
    )
    values[:, np.flatnonzero(present)] = resample_kinematics(storage, raw, time, config)
    return values, present


def _is_angle(column: str) -> bool:
    return not column.endswith(("_tx", "_ty", "_tz"))


def _foot_load(
    grf: Storage, specs: list[ExternalForceSpec], time: np.ndarray, config: TrialConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Force (N, 3) N, centre of pressure (N, 3) m and free moment (N, 3) N m of one foot in
    ground, and contact (N,), at ``time``.

    The plate's wrench about the ground origin, M = sum (p x F + T) over every force on
    the foot, is written as the total force F at a point c = (x, y0, z) on the floor
    (y0 the force-weighted height of the recorded points) plus a vertical couple
    (0, T_y, 0): M_x = y0 F_z - z F_y and M_z = x F_y - y0 F_x give x and z, and
    T_y = M_y - (z F_x - x F_z).
    """
    force = np.zeros((grf.time.shape[0], 3))
    moment = np.zeros((grf.time.shape[0], 3))
    floor_y = np.zeros(grf.time.shape[0])
    weight = np.zeros(grf.time.shape[0])
    for spec in specs:
        f = grf.columns_of(list(spec.force_columns))
        p = grf.columns_of(list(spec.point_columns))
        torque = grf.columns_of(list(spec.torque_columns)) if spec.torque_columns else 0.0
        force += f
        moment += np.cross(p, f) + torque
        floor_y += p[:, 1] * np.abs(f[:, 1])
        weight += np.abs(f[:, 1])
    loaded = force[:, 1] > config.contact_threshold_n
    y = np.divide(floor_y, weight, out=np.zeros_like(floor_y), where=weight > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (moment[:, 2] + y * force[:, 0]) / force[:, 1]
        z = (y * force[:, 2] - moment[:, 0]) / force[:, 1]
    cop = np.column_stack([x, y, z])
    if loaded.any():
        for k in range(3):
            cop[:, k] = np.interp(grf.time, grf.time[loaded], cop[loaded, k])
    else:
        cop[:] = 0.0
    free_y = np.where(
        loaded, moment[:, 1] - (cop[:, 2] * force[:, 0] - cop[:, 0] * force[:, 2]), 0.0
    )

    grid, rate = _uniform(grf)
    raw = np.column_stack([force, cop, free_y])
    on_grid = np.column_stack([np.interp(grid, grf.time, column) for column in raw.T])
    smooth = lowpass(on_grid, rate, config.grf_cutoff_hz, config.filter_order)
    at_time = np.column_stack([np.interp(time, grid, column) for column in smooth.T])
    contact = np.interp(time, grf.time, force[:, 1]) > config.contact_threshold_n
    free_moment = np.zeros((time.size, 3))
    free_moment[:, 1] = at_time[:, 6]
    unloaded = ~contact
    force, cop = at_time[:, :3], at_time[:, 3:6]
    force[unloaded] = cop[unloaded] = free_moment[unloaded] = 0.0
    return force, cop, free_moment, contact
