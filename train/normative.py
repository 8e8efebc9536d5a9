"""The built-in gait as a leg's trial: its pelvis motion and loads, scaled to a subject.

The built-in gait (``firmware_bridge.normative_gait``) holds the right leg's five
coordinates vs gait phase (0 = right heel strike) over one real cycle of
subject01_walk1. Everything that scales with the body is here, in
``train/data/normative_kinetics.json`` (scripts/fit_normative_kinetics.py, from
the same cycle), so that the built gait is that leg's walking with its own
loads:

- the pelvis's six coordinates vs gait phase, Fourier series: tilt, list and
  rotation (rad) and ty per leg length with their means (the mean tilt sets
  the thigh's angle to gravity, ty the pelvis's height over the floor); tx
  and tz per leg length about their cycle means (the pelvis's place in the
  lab). Treadmill-like: tx oscillates about 0, because the source walked on a
  treadmill, a constant progression speed would change no joint moment
  (only accelerations enter the dynamics), and positions stay bounded however
  many cycles are played;
- the foot's ground reaction vs stance phase s in [0, 1] (heel strike to
  toe-off; the foot is loaded for the first ``stance_fraction`` of its gait
  cycle): the force per body weight in ground axes (x forward, y up, z to the
  right in the right leg's world) and the free moment (vertical) per body
  weight and leg length, sine series zero at heel strike and toe-off; the
  centre of pressure relative to the ankle joint centre in the foot's frame
  per leg length (cosine series), so that it stays under the foot whatever the
  segment lengths and the pose it is replayed with.

Leg length is the hip-to-ankle joint centre distance at the default pose.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from calib.coordinates import COORDINATES
from firmware_bridge.normative_gait import (
    HipSeries,
    NormativeGait,
    fourier_series,
    load_normative_gait,
)
from train.dynamics3d import GRAVITY, PELVIS_COORDINATES, LegModel, leg_kinematics
from train.trial import FREE_MOMENT, LegTrial, TrialConfig, only_in_contact

__all__ = [
    "DEFAULT_PATH",
    "NormativeKinetics",
    "leg_length_m",
    "load_normative_kinetics",
    "lowpass_gains",
    "normative_leg",
    "stance_basis",
]

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "normative_kinetics.json"
SOURCE = "firmware_bridge.normative_gait"
_ANKLE = 2  # index of the ankle among LegKinematics.joint_centre
_FOOT = 2  # index of the foot among LegKinematics.orientation
_TRANSLATIONS = slice(3, 6)  # pelvis_tx, ty, tz among PELVIS_COORDINATES


def leg_length_m(subject) -> float:
    """Hip to ankle joint centre at the default pose (m), the length the kinetics are per."""
    thigh = np.asarray(subject.segments["thigh"].distal_joint, dtype=np.float64)
    shank = np.asarray(subject.segments["shank"].distal_joint, dtype=np.float64)
    return float(np.linalg.norm(thigh + shank))


def stance_basis(s: np.ndarray, harmonics: int, kind: str) -> np.ndarray:
    """(N, K) sin(k pi s), k = 1..K ("sin"), or (N, K + 1) cos(k pi s), k = 0..K ("cos"),
    at stance phases s (N,)."""
    if kind == "sin":
        return np.sin(np.pi * s[:, None] * np.arange(1, harmonics + 1))
    if kind == "cos":
        return np.cos(np.pi * s[:, None] * np.arange(0, harmonics + 1))
    raise ValueError(f"kind must be 'sin' or 'cos', got {kind!r}")


@dataclass(frozen=True)
class NormativeKinetics:
    """The coefficients of ``normative_kinetics.json`` (see the module docstring).

    ``force_sin`` (3, K) per body weight, ``free_moment_sin`` (K,) per body weight
    and leg length, ``cop_cos`` (3, K + 1) per leg length in the foot's frame;
    ``pelvis_mean`` (6,), ``pelvis_cos`` and ``pelvis_sin`` (6, H): rad for the
    angles, per leg length for the translations.
    """

    stance_fraction: float
    force_sin: np.ndarray
    free_moment_sin: np.ndarray
    cop_cos: np.ndarray
    pelvis_mean: np.ndarray
    pelvis_cos: np.ndarray
    pelvis_sin: np.ndarray

    def pelvis_at_phase(self, phase, leg_length_m: float) -> np.ndarray:
        """The pelvis's coordinates (N, 6) (rad, m) at gait phases (N,) for a leg of that length."""
        pelvis = fourier_series(phase, self.pelvis_mean, self.pelvis_cos, self.pelvis_sin)
        pelvis[:, _TRANSLATIONS] *= leg_length_m
        return pelvis

    def stance_loads(
        self, s: np.ndarray, weight_n: float, leg_length_m: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """At stance phases s (N,): force (N, 3) N in ground, free moment (N, 3) N m (vertical)
        and the centre of pressure relative to the ankle in the foot's frame (N, 3) m."""
        sines = stance_basis(s, self.force_sin.shape[1], "sin")
        force = weight_n * sines @ self.force_sin.T
        free_moment = np.zeros_like(force)
        free_moment[:, 1] = weight_n * leg_length_m * sines @ self.free_moment_sin
        cop = leg_length_m * stance_basis(s, self.cop_cos.shape[1] - 1, "cos") @ self.cop_cos.T
        return force, free_moment, cop


def load_normative_kinetics(path: str | Path = DEFAULT_PATH) -> NormativeKinetics:
    """The pelvis motion and loads of the built-in gait (default: the shipped file)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        pelvis = raw["pelvis"]
        if tuple(pelvis["names"]) != PELVIS_COORDINATES:
            raise ValueError(f"pelvis names {pelvis['names']}, not {list(PELVIS_COORDINATES)}")
        kinetics = NormativeKinetics(
            stance_fraction=float(raw["stance_fraction"]),
            force_sin=np.asarray(raw["force_per_body_weight_sin"], dtype=float),
            free_moment_sin=np.asarray(
                raw["free_moment_per_body_weight_leg_length_sin"], dtype=float
            ),
            cop_cos=np.asarray(raw["cop_from_ankle_in_foot_per_leg_length_cos"], dtype=float),
            pelvis_mean=np.asarray(pelvis["mean"], dtype=float),
            pelvis_cos=np.asarray(pelvis["cos"], dtype=float),
            pelvis_sin=np.asarray(pelvis["sin"], dtype=float),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path}: not a valid normative kinetics file ({exc}); regenerate it "
            "with scripts/fit_normative_kinetics.py"
        ) from None
    k = kinetics.force_sin.shape[1]
    shapes_ok = (
        kinetics.force_sin.shape == (3, k)
        and kinetics.free_moment_sin.shape == (k,)
        and kinetics.cop_cos.shape[0] == 3
        and kinetics.pelvis_mean.shape == (6,)
        and kinetics.pelvis_cos.shape == kinetics.pelvis_sin.shape
        and kinetics.pelvis_cos.shape[0] == 6
        and 0 < kinetics.stance_fraction < 1
    )
    if not shapes_ok:
        raise ValueError(
            f"{path}: coefficient shapes or stance_fraction are not those of "
            "scripts/fit_normative_kinetics.py; regenerate it"
        )
    return kinetics


def lowpass_gains(
    harmonics: int, period_s: float, config: TrialConfig, rate_hz: float
) -> np.ndarray:
    """(K,) the gain of ``train.trial.lowpass`` at ``rate_hz`` on harmonic k = 1..K of a
    periodic signal of period ``period_s``: the filter's exact steady state, with no edge.

    A digital Butterworth of order n (``config.filter_order``) at fc
    (``config.kinematics_cutoff_hz``, bilinear with the cut-off prewarped) run forwards
    and backwards: |H(f)|² = 1 / (1 + (tan(pi f / fs) / tan(pi fc / fs))^2n). All 1
    without a cut-off.
    """
    if config.kinematics_cutoff_hz is None:
        return np.ones(harmonics)
    warped = np.tan(np.pi * np.arange(1, harmonics + 1) / period_s / rate_hz)
    cutoff = np.tan(np.pi * config.kinematics_cutoff_hz / rate_hz)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + (warped / cutoff) ** (2 * config.filter_order))


def normative_leg(
    subject,
    cycles: int,
    side: str,
    rate_hz: float = 100.0,
    gait: NormativeGait | None = None,
    kinetics: NormativeKinetics | None = None,
    config: TrialConfig | None = None,
) -> LegTrial:
    """One leg walking the built-in gait for ``cycles`` cycles at ``rate_hz``, scaled to
    ``subject`` (a five-coordinate ``calib.Subject``: body weight, leg length, the foot
    that carries the centre of pressure).

    The right leg's heel strikes at time 0, the left leg's half a cycle later. Like
    ``train.trial``'s left legs, the left leg is in the right leg's (mirrored) world:
    it walks the same cycle, so its trial holds the right leg's values (pose,
    pelvis, loads) at its own phase; the pelvis's left-right asymmetry (the
    source's: a mean list of about 1 degree) is thereby mirrored for the left leg
    rather than shared with the right, each leg seeing the pelvis the source's
    right leg saw.

    The series hold the coordinates as inverse kinematics gives them; they are
    low-passed as ``train.trial`` filters a recorded trial's (``config``, default
    ``TrialConfig()``: 6 Hz, at ``rate_hz``), so that the built gait's accelerations
    are those a recorded one of the same motion would have.
    """
    if cycles < 1:
        raise ValueError(f"cycles must be >= 1, got {cycles}")
    if side not in ("r", "l"):
        raise ValueError(f"side must be 'r' or 'l', got {side!r}")
    gait = gait or load_normative_gait()
    kinetics = kinetics or load_normative_kinetics()
    config = config or TrialConfig()
    if gait.hip is None:
        gait.pose_at_phase(0.0)  # refuses a gait file without hip adduction and rotation
    hip = gait.hip
    assert hip is not None  # pose_at_phase raised above otherwise
    gain = lowpass_gains(gait.harmonics, gait.period_s, config, rate_hz)
    hip_gain = lowpass_gains(hip.cos.shape[1], gait.period_s, config, rate_hz)
    gait = replace(
        gait,
        cos=gait.cos * gain,
        sin=gait.sin * gain,
        hip=HipSeries(hip.mean, hip.cos * hip_gain, hip.sin * hip_gain),
    )
    gain = lowpass_gains(kinetics.pelvis_cos.shape[1], gait.period_s, config, rate_hz)
    kinetics = replace(
        kinetics, pelvis_cos=kinetics.pelvis_cos * gain, pelvis_sin=kinetics.pelvis_sin * gain
    )
    n = round(cycles * gait.period_s * rate_hz)
    time_s = np.arange(n) / rate_hz
    phase = time_s / gait.period_s - (0.5 if side == "l" else 0.0)
    length = leg_length_m(subject)
    q = gait.pose_at_phase(phase)
    pelvis = kinetics.pelvis_at_phase(phase, length)

    cycle_phase = np.mod(phase, 1.0)
    s = np.clip(cycle_phase / kinetics.stance_fraction, 0.0, 1.0)
    force, free_moment, cop_in_foot = kinetics.stance_loads(
        s, subject.body.mass * -GRAVITY[1], length
    )
    zero6, zero5 = np.zeros(6), np.zeros(5)
    foot = leg_kinematics(LegModel.from_subject(subject), pelvis, zero6, zero6, q, zero5, zero5)
    cop = foot.joint_centre[:, _ANKLE] + np.einsum(
        "nij,nj->ni", foot.orientation[:, _FOOT], cop_in_foot
    )
    contact = (cycle_phase < kinetics.stance_fraction) & (force[:, 1] > 0)
    return LegTrial(
        time=time_s,
        q=q,
        pelvis=pelvis,
        **only_in_contact(contact, force, cop, free_moment),
        contact=contact,
        side=side,
        rate_hz=float(rate_hz),
        measured=COORDINATES + PELVIS_COORDINATES + (FREE_MOMENT,),
        source=(SOURCE,),
        variant="normative",
    )
