"""The built-in gait cycle: right-leg hip, knee and ankle angles (rad) as Fourier series of phase.

Phase 0 is right heel strike and 1 the next; the default period is that of the
real cycle the coefficients were fitted to (scripts/fit_normative_gait.py on
OpenSim's subject01_walk1 IK, right heel strikes at 0.618 s and 1.853 s).
OpenSim conventions: hip_flexion + flexion, knee_angle 0 straight and negative
flexed, ankle_angle + dorsiflexion.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "normative_gait.json"
JOINT_NAMES = ("hip_flexion_r", "knee_angle_r", "ankle_angle_r")


@dataclass(frozen=True)
class NormativeGait:
    """q_j(φ) = mean_j + Σ_k cos_jk cos(2πkφ) + sin_jk sin(2πkφ), φ the phase in cycles."""

    joint_names: tuple[str, ...]
    period_s: float
    mean: np.ndarray  # (J,) rad
    cos: np.ndarray  # (J, K) rad
    sin: np.ndarray  # (J, K) rad

    @property
    def harmonics(self) -> int:
        return self.cos.shape[1]

    def angles_at_phase(self, phase) -> np.ndarray:
        """Angles (N, J) rad at phases (N,) in cycles (any real; the series is periodic)."""
        phase = np.atleast_1d(np.asarray(phase, dtype=float))
        k = np.arange(1, self.harmonics + 1)
        arg = 2 * np.pi * phase[:, None] * k[None, :]
        return self.mean + np.cos(arg) @ self.cos.T + np.sin(arg) @ self.sin.T

    def angles_at_time(self, time_s, period_s: float | None = None) -> np.ndarray:
        """Angles (N, J) rad at times (N,) s after a right heel strike, for a cycle of period_s."""
        period = self.period_s if period_s is None else period_s
        if not period > 0:
            raise ValueError(f"gait period must be positive, got {period} s")
        return self.angles_at_phase(np.asarray(time_s, dtype=float) / period)

    def to_json(self) -> dict:
        return {
            "schema_version": 1,
            "joint_names": list(self.joint_names),
            "period_s": self.period_s,
            "mean_rad": self.mean.tolist(),
            "cos_rad": self.cos.tolist(),
            "sin_rad": self.sin.tolist(),
        }


def load_normative_gait(path: str | Path = DEFAULT_PATH) -> NormativeGait:
    """The gait cycle from a coefficient file (default: the one shipped with the package)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        gait = NormativeGait(
            joint_names=tuple(raw["joint_names"]), period_s=float(raw["period_s"]),
            mean=np.asarray(raw["mean_rad"], dtype=float),
            cos=np.asarray(raw["cos_rad"], dtype=float),
            sin=np.asarray(raw["sin_rad"], dtype=float))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a valid normative gait file ({exc}); regenerate it with "
                         "scripts/fit_normative_gait.py") from None
    j = len(gait.joint_names)
    if gait.mean.shape != (j,) or gait.cos.shape != gait.sin.shape or gait.cos.shape[0] != j:
        raise ValueError(f"{path}: coefficient shapes do not match {j} joints")
    return gait
