"""The built-in gait cycle: the right leg's five coordinates (rad) as Fourier series of phase.

Phase 0 is right heel strike and 1 the next; the default period is that of the
real cycle the coefficients were fitted to (scripts/fit_normative_gait.py on
OpenSim's subject01_walk1 IK, right heel strikes at 0.618 s and 1.853 s).
OpenSim conventions: hip_flexion + flexion, hip_adduction + adduction,
hip_rotation + internal rotation, knee_angle 0 straight and negative flexed,
ankle_angle + dorsiflexion.

``angles_at_phase`` gives the three sagittal angles (``JOINT_NAMES``: what the
simulator plays and an encoder exoskeleton measures); ``pose_at_phase`` all five
in ``POSE_NAMES`` order (calib's coordinate order), hip adduction and rotation
from a second block of the same file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calib.coordinates import COORDINATES, SAGITTAL_COORDINATES, opensim_coordinate

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "normative_gait.json"
JOINT_NAMES = tuple(opensim_coordinate(c) for c in SAGITTAL_COORDINATES)
HIP_NAMES = tuple(opensim_coordinate(c) for c in COORDINATES if c not in SAGITTAL_COORDINATES)
POSE_NAMES = tuple(opensim_coordinate(c) for c in COORDINATES)
SOURCE_HEEL_STRIKES_S = (0.618, 1.853)
"""The two right heel strikes (s) of subject01_walk1 bounding the cycle the coefficients
were fitted to (vertical GRF > 20 N)."""
_HIP_BLOCK = "hip_adduction_rotation"


def fourier_series(phase, mean: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """x_j(φ) = mean_j + Σ_k cos_jk cos(2πkφ) + sin_jk sin(2πkφ), k = 1..K: (N, J) at phases
    (N,) in cycles, from ``mean`` (J,), ``cos`` and ``sin`` (J, K)."""
    phase = np.atleast_1d(np.asarray(phase, dtype=float))
    k = np.arange(1, cos.shape[1] + 1)
    arg = 2 * np.pi * phase[:, None] * k[None, :]
    return mean + np.cos(arg) @ cos.T + np.sin(arg) @ sin.T


def fourier_fit(
    phase: np.ndarray, values: np.ndarray, harmonics: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Least squares mean (J,), cos and sin (J, K) of ``values`` (N, J) at ``phase`` (N,)
    in cycles, and the RMS residual (J,)."""
    k = np.arange(1, harmonics + 1)
    arg = 2 * np.pi * phase[:, None] * k[None, :]
    design = np.hstack([np.ones((phase.size, 1)), np.cos(arg), np.sin(arg)])
    coefficients, *_ = np.linalg.lstsq(design, values, rcond=None)
    residual = design @ coefficients - values
    return (
        coefficients[0],
        coefficients[1 : harmonics + 1].T,
        coefficients[harmonics + 1 :].T,
        np.sqrt(np.mean(residual**2, axis=0)),
    )


@dataclass(frozen=True)
class HipSeries:
    """Hip adduction and rotation (``HIP_NAMES``) as Fourier series of the same phase (rad)."""

    mean: np.ndarray  # (2,) rad
    cos: np.ndarray  # (2, K) rad
    sin: np.ndarray  # (2, K) rad


@dataclass(frozen=True)
class NormativeGait:
    """q_j(φ) = mean_j + Σ_k cos_jk cos(2πkφ) + sin_jk sin(2πkφ), φ the phase in cycles.

    ``mean``, ``cos``, ``sin`` are the sagittal angles' (``joint_names``); ``hip`` holds
    hip adduction and rotation (None in a file written before they were fitted).
    """

    joint_names: tuple[str, ...]
    period_s: float
    mean: np.ndarray  # (J,) rad
    cos: np.ndarray  # (J, K) rad
    sin: np.ndarray  # (J, K) rad
    hip: HipSeries | None = None

    @property
    def harmonics(self) -> int:
        return self.cos.shape[1]

    def angles_at_phase(self, phase) -> np.ndarray:
        """Sagittal angles (N, J) rad at phases (N,) in cycles (any real: the series is
        periodic)."""
        return fourier_series(phase, self.mean, self.cos, self.sin)

    def pose_at_phase(self, phase) -> np.ndarray:
        """The five coordinates (N, 5) rad in ``POSE_NAMES`` order at phases (N,) in cycles."""
        if self.hip is None:
            raise ValueError(
                "this gait file has no hip adduction and rotation; regenerate it "
                "with scripts/fit_normative_gait.py"
            )
        sagittal = self.angles_at_phase(phase)
        hip = fourier_series(phase, self.hip.mean, self.hip.cos, self.hip.sin)
        named = dict(zip(self.joint_names + HIP_NAMES, np.concatenate([sagittal, hip], axis=1).T))
        return np.column_stack([named[name] for name in POSE_NAMES])

    def angles_at_time(self, time_s, period_s: float | None = None) -> np.ndarray:
        """Angles (N, J) rad at times (N,) s after a right heel strike, for a cycle of period_s."""
        period = self.period_s if period_s is None else period_s
        if not period > 0:
            raise ValueError(f"gait period must be positive, got {period} s")
        return self.angles_at_phase(np.asarray(time_s, dtype=float) / period)

    def to_json(self) -> dict:
        document = {
            "schema_version": 1 if self.hip is None else 2,
            "joint_names": list(self.joint_names),
            "period_s": self.period_s,
            "mean_rad": self.mean.tolist(),
            "cos_rad": self.cos.tolist(),
            "sin_rad": self.sin.tolist(),
        }
        if self.hip is not None:
            document[_HIP_BLOCK] = {
                "joint_names": list(HIP_NAMES),
                "mean_rad": self.hip.mean.tolist(),
                "cos_rad": self.hip.cos.tolist(),
                "sin_rad": self.hip.sin.tolist(),
            }
        return document


def load_normative_gait(path: str | Path = DEFAULT_PATH) -> NormativeGait:
    """The gait cycle from a coefficient file (default: the one shipped with the package)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        block = raw.get(_HIP_BLOCK)
        hip = (
            None
            if block is None
            else HipSeries(
                mean=np.asarray(block["mean_rad"], dtype=float),
                cos=np.asarray(block["cos_rad"], dtype=float),
                sin=np.asarray(block["sin_rad"], dtype=float),
            )
        )
        if block is not None and tuple(block["joint_names"]) != HIP_NAMES:
            raise ValueError(f"{_HIP_BLOCK} names {block['joint_names']}, not {list(HIP_NAMES)}")
        gait = NormativeGait(
            joint_names=tuple(raw["joint_names"]),
            period_s=float(raw["period_s"]),
            mean=np.asarray(raw["mean_rad"], dtype=float),
            cos=np.asarray(raw["cos_rad"], dtype=float),
            sin=np.asarray(raw["sin_rad"], dtype=float),
            hip=hip,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path}: not a valid normative gait file ({exc}); regenerate it with "
            "scripts/fit_normative_gait.py"
        ) from None
    j = len(gait.joint_names)
    if gait.mean.shape != (j,) or gait.cos.shape != gait.sin.shape or gait.cos.shape[0] != j:
        raise ValueError(f"{path}: coefficient shapes do not match {j} joints")
    if hip is not None and (
        hip.mean.shape != (len(HIP_NAMES),)
        or hip.cos.shape != hip.sin.shape
        or hip.cos.shape[0] != len(HIP_NAMES)
    ):
        raise ValueError(f"{path}: {_HIP_BLOCK} coefficient shapes do not match {HIP_NAMES}")
    return gait
