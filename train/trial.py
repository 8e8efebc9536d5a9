"""A walking trial per leg at the model's sample rate, from OpenSim's IK, GRF and ExternalLoads files.

What a leg's trial holds (all SI, OpenSim coordinates, world sagittal plane with
x forward and y up, z to the subject's right):

- ``q`` (N, 3): hip_flexion, knee_angle, ankle_angle of that leg (rad). The left
  leg's sagittal coordinates share the right's signs in OpenSim, so the left
  leg is a second sample of the same chain.
- ``force`` (N, 2): that foot's ground-reaction force (x, y) in N.
- ``cop`` (N, 2): its centre of pressure (x, y) in m relative to the hip joint
  centre: hip centre in ground = (pelvis_tx, pelvis_ty) + R(pelvis_tilt) · hip_centre,
  with ``subject.hip_centre`` in the pelvis frame (the left hip shares the right's
  sagittal (x, y)). Pelvis list and rotation are ignored unless
  ``TrialConfig.hip_lateral_offset_m`` is given (then the 3-D hip centre is projected,
  exactly as OpenSim places it; the planar formula errs by up to ~8 mm here).
- ``contact`` (N,): vertical force above ``contact_threshold_n`` (20 N by default,
  the threshold that places this trial's heel strikes at 0.618 s and 1.853 s).
  Below it the centre of pressure is meaningless, and the foot is treated as
  free: force 0, cop 0.
- ``pelvis_tilt`` (N,) rad and ``hip_acceleration`` (N, 2) m/s² of the hip centre,
  for the optional base-motion terms of the physics loss.

Processing (``TrialConfig``):
- joint and pelvis coordinates: low-pass, ``kinematics_cutoff_hz`` = 6 Hz by default,
  as OpenSim's static optimisation of this trial filters them (so physics torques
  match the reference), then a cubic spline to the model's time grid;
- GRF: low-pass, ``grf_cutoff_hz`` = 15 Hz, before resampling (linear interpolation
  of the filtered signal);
- every low-pass is a 2nd-order Butterworth run forwards and backwards
  (``scipy.signal.sosfiltfilt``): zero phase, 4th-order roll-off;
- contact is decided on the unfiltered vertical force (filtering would smear
  heel strike earlier), the centre of pressure is computed from the unfiltered
  force and moment where the foot is loaded and bridged linearly across the
  unloaded stretches before filtering, so garbage COP from an unloaded plate
  never leaks into stance.

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

from train.opensim_io import ExternalForceSpec, Storage, read_external_loads, read_storage

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

SIDES = ("r", "l")
_JOINT_COORDINATES = ("hip_flexion", "knee_angle", "ankle_angle")
_PELVIS_COLUMNS = ("pelvis_tilt", "pelvis_tx", "pelvis_ty")

# Savitzky–Golay derivative: a quartic over ~0.1 s centred on each sample; its
# passband (≈ 20 Hz at 100 Hz) keeps gait's content, the window bounds the noise gain.
_DERIVATIVE_WINDOW_S = 0.1
_DERIVATIVE_POLYORDER = 4


class TrialError(ValueError):
    """IK, GRF and loads files that do not make a trial; the message says which file and what to change."""


@dataclass(frozen=True)
class TrialConfig:
    """How a trial is filtered and where a foot counts as loaded."""

    kinematics_cutoff_hz: float | None = 6.0
    grf_cutoff_hz: float = 15.0
    contact_threshold_n: float = 20.0
    filter_order: int = 2
    hip_lateral_offset_m: float | None = None
    """The hip centre's distance from the pelvis's mid-plane (m; gait2392: 0.0835 generic,
    0.0856 for subject01). Given, the hip centre is placed in 3-D with pelvis list and
    rotation and projected on the sagittal plane; None keeps the planar formula, which
    errs by up to ~8 mm on the reference trial (the hip's lateral offset swung by a
    few degrees of pelvis rotation)."""

    def __post_init__(self) -> None:
        if self.kinematics_cutoff_hz is not None and not self.kinematics_cutoff_hz > 0:
            raise TrialError(f"kinematics_cutoff_hz must be > 0 Hz or None, got {self.kinematics_cutoff_hz}")
        if not self.grf_cutoff_hz > 0:
            raise TrialError(f"grf_cutoff_hz must be > 0 Hz, got {self.grf_cutoff_hz}")
        if not self.contact_threshold_n > 0:
            raise TrialError(f"contact_threshold_n must be > 0 N, got {self.contact_threshold_n}")
        if self.filter_order < 1:
            raise TrialError(f"filter_order must be >= 1, got {self.filter_order}")
        if self.hip_lateral_offset_m is not None and not self.hip_lateral_offset_m >= 0:
            raise TrialError(f"hip_lateral_offset_m must be >= 0 m or None, got {self.hip_lateral_offset_m}")


@dataclass(frozen=True, eq=False)
class LegTrial:
    """One leg's trial at ``rate_hz``, uniform samples from ``time[0]``; see the module docstring."""

    time: np.ndarray
    q: np.ndarray
    force: np.ndarray
    cop: np.ndarray
    contact: np.ndarray
    pelvis_tilt: np.ndarray
    hip_acceleration: np.ndarray
    side: str
    rate_hz: float
    source: tuple[str, ...] = ()
    variant: str = "recorded"

    def __post_init__(self) -> None:
        n = self.time.shape[0]
        shapes = {
            "time": (self.time, (n,)),
            "q": (self.q, (n, 3)),
            "force": (self.force, (n, 2)),
            "cop": (self.cop, (n, 2)),
            "contact": (self.contact, (n,)),
            "pelvis_tilt": (self.pelvis_tilt, (n,)),
            "hip_acceleration": (self.hip_acceleration, (n, 2)),
        }
        for name, (array, shape) in shapes.items():
            if array.shape != shape:
                raise TrialError(f"LegTrial.{name} has shape {array.shape}, expected {shape}")
        if self.side not in SIDES:
            raise TrialError(f"LegTrial.side must be 'r' or 'l', got {self.side!r}")
        if not self.rate_hz > 0:
            raise TrialError(f"LegTrial.rate_hz must be > 0, got {self.rate_hz}")

    @property
    def n_samples(self) -> int:
        return int(self.time.shape[0])

    @property
    def duration_s(self) -> float:
        return (self.n_samples - 1) / self.rate_hz

    def segment(self, start: int, stop: int, variant: str | None = None) -> LegTrial:
        """Samples [start, stop) as a trial of their own, time kept."""
        if not 0 <= start < stop <= self.n_samples:
            raise TrialError(f"segment [{start}, {stop}) outside 0..{self.n_samples}")
        return replace(
            self,
            time=self.time[start:stop].copy(),
            q=self.q[start:stop].copy(),
            force=self.force[start:stop].copy(),
            cop=self.cop[start:stop].copy(),
            contact=self.contact[start:stop].copy(),
            pelvis_tilt=self.pelvis_tilt[start:stop].copy(),
            hip_acceleration=self.hip_acceleration[start:stop].copy(),
            variant=variant if variant is not None else self.variant,
        )


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

    ``subject`` needs ``hip_centre`` (x, y) m in the pelvis frame (``calib.Subject``).
    ``grf_path`` None takes the data file the ExternalLoads names. ``angles_in_degrees``
    overrides the IK header's unit (see ``read_storage``).
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

    joint_columns = [f"{c}_{side}" for c in _JOINT_COORDINATES]
    q = resample_kinematics(ik, ik.angles_radians(joint_columns), time, config)
    pelvis_angles = ["pelvis_tilt"]
    if config.hip_lateral_offset_m is not None:
        pelvis_angles += ["pelvis_list", "pelvis_rotation"]
    pelvis = np.column_stack([
        ik.angles_radians(pelvis_angles),
        ik.columns_of(["pelvis_tx", "pelvis_ty"]),
    ])
    pelvis = resample_kinematics(ik, pelvis, time, config)
    if config.hip_lateral_offset_m is None:
        hip = hip_centre_in_ground(pelvis[:, 0], pelvis[:, -2:], subject.hip_centre)
    else:
        lateral = config.hip_lateral_offset_m if side == "r" else -config.hip_lateral_offset_m
        hip = hip_centre_in_ground(pelvis[:, 0], pelvis[:, -2:], subject.hip_centre,
                                   pelvis[:, 1], pelvis[:, 2], lateral)

    force, cop_ground, contact = _foot_load(grf, specs, time, config)
    cop = np.where(contact[:, None], cop_ground - hip, 0.0)
    force = np.where(contact[:, None], force, 0.0)
    _, hip_acceleration = noncausal_derivatives(hip, rate_hz)
    return LegTrial(
        time=time,
        q=q,
        force=force,
        cop=cop,
        contact=contact,
        pelvis_tilt=pelvis[:, 0].copy(),
        hip_acceleration=hip_acceleration,
        side=side,
        rate_hz=float(rate_hz),
        source=(str(ik_path), str(grf_path), str(loads_path)),
    )


def load_both_legs(ik_path, grf_path, loads_path, subject, rate_hz: float = 100.0,
                   config: TrialConfig | None = None,
                   angles_in_degrees: bool | None = None) -> list[LegTrial]:
    """The right and the left leg of one trial (the left as a second sample of the same chain)."""
    return [
        load_trial(ik_path, grf_path, loads_path, subject, rate_hz, side, config, angles_in_degrees)
        for side in SIDES
    ]


def hip_centre_in_ground(pelvis_tilt: np.ndarray, pelvis_origin: np.ndarray,
                         hip_centre: tuple[float, float], pelvis_list: np.ndarray | None = None,
                         pelvis_rotation: np.ndarray | None = None,
                         lateral_m: float = 0.0) -> np.ndarray:
    """(N, 2) m, the hip centre in the world sagittal plane.

    Planar (no list/rotation): pelvis origin (pelvis_tx, pelvis_ty) + R(pelvis_tilt) · hip_centre.
    With ``pelvis_list``/``pelvis_rotation`` (rad) and the hip's ``lateral_m`` (+z right,
    −z left) the pelvis orientation is OpenSim's ground_pelvis sequence
    Rz(tilt) · Rx(list) · Ry(rotation), and the hip's (x, y) are those of the 3-D point.
    """
    hx, hy = float(hip_centre[0]), float(hip_centre[1])
    c, s = np.cos(pelvis_tilt), np.sin(pelvis_tilt)
    if pelvis_list is None or pelvis_rotation is None:
        return np.column_stack([
            pelvis_origin[:, 0] + c * hx - s * hy,
            pelvis_origin[:, 1] + s * hx + c * hy,
        ])
    cl, sl = np.cos(pelvis_list), np.sin(pelvis_list)
    cr, sr = np.cos(pelvis_rotation), np.sin(pelvis_rotation)
    hz = float(lateral_m)
    # Ry(rotation) · h, then Rx(list), then Rz(tilt)
    x1, y1, z1 = cr * hx + sr * hz, np.full_like(cr, hy), -sr * hx + cr * hz
    x2, y2 = x1, cl * y1 - sl * z1
    return np.column_stack([
        pelvis_origin[:, 0] + c * x2 - s * y2,
        pelvis_origin[:, 1] + s * x2 + c * y2,
    ])


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
            f"noncausal_derivatives needs at least {window} samples at {rate_hz:g} Hz, got {q.shape[0]}"
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
    """Zero-phase Butterworth low-pass along axis 0 (``order`` per pass, run forwards and backwards)."""
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
        for what, frame in (("force", spec.force_expressed_in_body),
                            ("point", spec.point_expressed_in_body)):
            if frame.lower() != "ground":
                raise TrialError(
                    f"{loads_path}: {spec.name}'s {what} is expressed in {frame!r}; only "
                    "ground-frame GRFs are supported (export the force plate data in the lab/ground frame)"
                )
        if not all(spec.point_columns):
            raise TrialError(f"{loads_path}: {spec.name} names no point (centre of pressure) columns")
    return feet


def _uniform(storage: Storage) -> tuple[np.ndarray, float]:
    """The file's own time grid made uniform at its mean rate (identity for uniform files)."""
    rate = storage.rate_hz
    n = round(float(storage.time[-1] - storage.time[0]) * rate) + 1
    return storage.time[0] + np.arange(n) / rate, rate


def resample_kinematics(storage: Storage, values: np.ndarray, time: np.ndarray,
                        config: TrialConfig) -> np.ndarray:
    """``values`` (rows of ``storage``) at ``time``: spline onto the file's own uniform grid,
    low-pass there at ``config.kinematics_cutoff_hz`` (if set), spline onto ``time``."""
    grid, rate = _uniform(storage)
    on_grid = CubicSpline(storage.time, values, axis=0)(grid)
    if config.kinematics_cutoff_hz is not None:
        on_grid = lowpass(on_grid, rate, config.kinematics_cutoff_hz, config.filter_order)
    return CubicSpline(grid, on_grid, axis=0)(time)


def _foot_load(grf: Storage, specs: list[ExternalForceSpec], time: np.ndarray,
               config: TrialConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Force (N, 2), centre of pressure in ground (N, 2), contact (N,) of one foot at ``time``."""
    force = np.zeros((grf.time.shape[0], 2))
    moment_z = np.zeros(grf.time.shape[0])  # about the ground origin, N·m
    floor_y = np.zeros(grf.time.shape[0])
    weight = np.zeros(grf.time.shape[0])
    for spec in specs:
        f = grf.columns_of(list(spec.force_columns[:2]))
        p = grf.columns_of(list(spec.point_columns[:2]))
        torque_z = grf.column(spec.torque_columns[2]) if spec.torque_columns else 0.0
        force += f
        # Planar moment of a force at p plus its free torque: (p × F)_z + T_z.
        moment_z += p[:, 0] * f[:, 1] - p[:, 1] * f[:, 0] + torque_z
        floor_y += p[:, 1] * np.abs(f[:, 1])
        weight += np.abs(f[:, 1])
    loaded = force[:, 1] > config.contact_threshold_n
    # The equivalent point on the floor line where the same force gives the same moment.
    y = np.divide(floor_y, weight, out=np.zeros_like(floor_y), where=weight > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (moment_z + y * force[:, 0]) / force[:, 1]
    cop = np.column_stack([x, y])
    if loaded.any():
        for k in range(2):
            cop[:, k] = np.interp(grf.time, grf.time[loaded], cop[loaded, k])
    else:
        cop[:] = 0.0

    grid, rate = _uniform(grf)
    raw = np.column_stack([force, cop])
    on_grid = np.column_stack([np.interp(grid, grf.time, raw[:, k]) for k in range(4)])
    smooth = lowpass(on_grid, rate, config.grf_cutoff_hz, config.filter_order)
    at_time = np.column_stack([np.interp(time, grid, smooth[:, k]) for k in range(4)])
    contact = np.interp(time, grf.time, force[:, 1]) > config.contact_threshold_n
    return at_time[:, :2], at_time[:, 2:], contact
