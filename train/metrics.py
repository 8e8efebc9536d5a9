"""Accuracy of estimated activations and forces against a reference (Section III-E).

R^2 (eq. 33) and NRMSE (eq. 34) per muscle, each over one muscle's samples:
- eq. (33): R^2 = 1 - sum (Y - Y_hat)^2 / sum (Y - mean Y)^2; 1 is perfect, 0 is no
  better than predicting the reference's mean, negative is worse than that.
- eq. (34): NRMSE = sqrt(mean (Y - Y_hat)^2) / (max Y - min Y); the reference's range
  normalises, so a muscle that barely moves in the reference scores a large NRMSE
  for a small error.
Both are undefined (NaN) for a reference that is constant over the compared span.

Two time series rarely share their sample times (OpenSim's static optimisation at the
IK's 60 Hz, a network at 100 Hz, a window's first prediction later than the file's
start): ``align`` interpolates the prediction linearly onto the reference's sample
times inside a [start, end] interval that both cover, so the reference is never
resampled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class MetricsError(ValueError):
    """Two series cannot be compared; the message says why and what to change."""


def r_squared(reference: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Coefficient of determination per column, eq. (33).

    reference, prediction: (N,) or (N, C) on the same samples. Returns a 0-d array
    for (N,) input, else (C,); NaN where the reference column is constant.
    """
    y, y_hat = _pair(reference, prediction)
    residual = np.sum((y - y_hat) ** 2, axis=0)
    total = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, 1.0 - residual / np.where(total > 0, total, 1.0), np.nan)


def nrmse(reference: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Root-mean-square error normalised by the reference's range per column, eq. (34)."""
    y, y_hat = _pair(reference, prediction)
    rmse = np.sqrt(np.mean((y - y_hat) ** 2, axis=0))
    span = y.max(axis=0) - y.min(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(span > 0, rmse / np.where(span > 0, span, 1.0), np.nan)


def _pair(reference: np.ndarray, prediction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(reference, dtype=np.float64)
    y_hat = np.asarray(prediction, dtype=np.float64)
    if y.shape != y_hat.shape:
        raise MetricsError(
            f"reference and prediction must have the same shape, got {y.shape} and {y_hat.shape}"
        )
    if y.ndim not in (1, 2) or y.shape[0] < 2:
        raise MetricsError(
            f"expected at least 2 samples as (N,) or (N, C) arrays, got shape {y.shape}"
        )
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(y_hat))):
        raise MetricsError("reference or prediction contains NaN or infinite values")
    return y, y_hat


@dataclass(frozen=True)
class AlignedSeries:
    """A reference and a prediction on the reference's sample times.

    ``time`` (N,) s, ``reference`` and ``prediction`` (N, C) with ``columns`` (C,).
    """

    time: np.ndarray
    columns: tuple[str, ...]
    reference: np.ndarray
    prediction: np.ndarray


def align(
    reference_time: np.ndarray,
    reference: np.ndarray,
    prediction_time: np.ndarray,
    prediction: np.ndarray,
    columns: Sequence[str],
    start_s: float | None = None,
    end_s: float | None = None,
) -> AlignedSeries:
    """Prediction interpolated onto the reference's times within [start_s, end_s].

    reference: (N, C), prediction: (K, C), columns matched by position. The span is
    the requested interval cut to where both series exist; at least two reference
    samples must fall inside it.
    """
    t_ref = np.asarray(reference_time, dtype=np.float64)
    t_pred = np.asarray(prediction_time, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64).reshape(t_ref.shape[0], -1)
    pred = np.asarray(prediction, dtype=np.float64).reshape(t_pred.shape[0], -1)
    if ref.shape[1] != pred.shape[1] or ref.shape[1] != len(columns):
        raise MetricsError(
            f"column counts differ: reference {ref.shape[1]}, prediction {pred.shape[1]}, "
            f"names {len(columns)}"
        )
    for name, t in (("reference", t_ref), ("prediction", t_pred)):
        if t.size < 2 or np.any(np.diff(t) <= 0):
            raise MetricsError(f"{name} times must be at least 2 strictly increasing samples")
    lo = max(t_ref[0], t_pred[0], -np.inf if start_s is None else start_s)
    hi = min(t_ref[-1], t_pred[-1], np.inf if end_s is None else end_s)
    # a tolerance of a microsecond: OpenSim writes times such as 0.54999928
    inside = (t_ref >= lo - 1e-6) & (t_ref <= hi + 1e-6)
    inside &= (t_ref >= t_pred[0] - 1e-9) & (t_ref <= t_pred[-1] + 1e-9)
    if np.count_nonzero(inside) < 2:
        raise MetricsError(
            f"fewer than 2 reference samples in the common span: reference "
            f"{t_ref[0]:.3f}-{t_ref[-1]:.3f} s, prediction {t_pred[0]:.3f}-{t_pred[-1]:.3f} s, "
            f"requested {_fmt(start_s)}-{_fmt(end_s)} s"
        )
    t = t_ref[inside]
    interpolated = np.column_stack([np.interp(t, t_pred, pred[:, c]) for c in range(pred.shape[1])])
    return AlignedSeries(
        time=t, columns=tuple(columns), reference=ref[inside], prediction=interpolated
    )


def _fmt(value: float | None) -> str:
    return "open" if value is None else f"{value:.3f}"


@dataclass(frozen=True)
class Scores:
    """Per-column R^2 (eq. 33) and NRMSE (eq. 34) of one aligned comparison."""

    columns: tuple[str, ...]
    r2: np.ndarray
    nrmse: np.ndarray
    span_s: tuple[float, float]
    samples: int

    @property
    def mean_r2(self) -> float:
        """Mean R^2 over the columns where it is defined."""
        return _nanmean(self.r2)

    @property
    def mean_nrmse(self) -> float:
        """Mean NRMSE over the columns where it is defined."""
        return _nanmean(self.nrmse)

    def to_dict(self) -> dict:
        return {
            "span_s": list(self.span_s),
            "samples": self.samples,
            "per_muscle": {
                name: {"r2": _json_float(r), "nrmse": _json_float(n)}
                for name, r, n in zip(self.columns, self.r2, self.nrmse)
            },
            "mean": {"r2": _json_float(self.mean_r2), "nrmse": _json_float(self.mean_nrmse)},
        }


def score(aligned: AlignedSeries) -> Scores:
    """R^2 and NRMSE per column of an aligned comparison."""
    return Scores(
        columns=aligned.columns,
        r2=r_squared(aligned.reference, aligned.prediction),
        nrmse=nrmse(aligned.reference, aligned.prediction),
        span_s=(float(aligned.time[0]), float(aligned.time[-1])),
        samples=int(aligned.time.size),
    )


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _json_float(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
