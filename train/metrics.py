"""Accuracy of estimated activations and forces against a reference (Section III-E).

Per muscle, each over one muscle's samples:
- eq. (33): R^2 = 1 - sum (Y - Y_hat)^2 / sum (Y - mean Y)^2; 1 is perfect, 0 is no
  better than predicting the reference's mean, negative is worse than that.
- eq. (34): NRMSE = sqrt(mean (Y - Y_hat)^2) / (max Y - min Y).
- Pearson's r between reference and estimate: the shape of the time course alone,
  blind to offset and scale (what an EMG envelope in arbitrary units can be held to).

When the scores are defined (``score``). A reference that barely moves makes eq. (33)
divide by almost nothing: a muscle that OpenSim's static optimisation leaves at its
0.01 lower bound scored R^2 = -5.6e30 against an estimate of 0.02. So R^2 is reported
only where the reference's range over the scored span reaches ``R2_MIN_RANGE`` (5 %)
of the muscle's full scale: 0.05 of activation (full scale 1), 5 % of the maximum
isometric force for forces. Elsewhere R^2 is undefined (NaN in arrays, ``null`` in
JSON, "-" in tables) and the muscle is judged by NRMSE and r. NRMSE divides by the
range but never by less than that same 5 % of full scale, so it is eq. (34) exactly
wherever R^2 is defined and stays finite for a flat reference. Pearson's r is
undefined where either series is numerically constant (range below ``FLAT_RANGE`` of
full scale), where its value would only measure round-off. Means run over the
muscles where a score is defined and say over how many.

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

R2_MIN_RANGE = 0.05
"""R^2 is defined where the reference's range reaches this fraction of the muscle's full scale."""
FLAT_RANGE = 1e-6
"""A series whose range is below this fraction of full scale is numerically constant."""


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


def nrmse(
    reference: np.ndarray, prediction: np.ndarray, min_range: float | np.ndarray = 0.0
) -> np.ndarray:
    """Root-mean-square error over the reference's range per column, eq. (34).

    The range is floored at ``min_range`` (same unit as the data, scalar or per column);
    NaN where the normaliser is 0 (a constant reference and no floor).
    """
    y, y_hat = _pair(reference, prediction)
    rmse = np.sqrt(np.mean((y - y_hat) ** 2, axis=0))
    span = np.maximum(y.max(axis=0) - y.min(axis=0), min_range)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(span > 0, rmse / np.where(span > 0, span, 1.0), np.nan)


def pearson_r(reference: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Pearson's correlation coefficient per column; NaN where either column is constant."""
    y, y_hat = _pair(reference, prediction)
    dy = y - y.mean(axis=0)
    dp = y_hat - y_hat.mean(axis=0)
    norm = np.sqrt(np.sum(dy**2, axis=0) * np.sum(dp**2, axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(norm > 0, np.sum(dy * dp, axis=0) / np.where(norm > 0, norm, 1.0), np.nan)
    return np.clip(r, -1.0, 1.0)


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
    """Per-column R^2 (eq. 33), NRMSE (eq. 34) and Pearson's r of one comparison.

    NaN marks an undefined score (module doc); ``reference_range`` is the reference's
    range over the scored samples and ``full_scale`` what the definitions scale by
    (1 for activations, the maximum isometric force in N for forces). ``span_s`` is
    None for samples that are not one time series (windows of several trials).
    """

    columns: tuple[str, ...]
    r2: np.ndarray
    nrmse: np.ndarray
    r: np.ndarray
    reference_range: np.ndarray
    full_scale: np.ndarray
    span_s: tuple[float, float] | None
    samples: int

    @property
    def mean_r2(self) -> float:
        """Mean R^2 over the columns where it is defined (``count(self.r2)`` of them)."""
        return _nanmean(self.r2)

    @property
    def mean_nrmse(self) -> float:
        return _nanmean(self.nrmse)

    @property
    def mean_r(self) -> float:
        return _nanmean(self.r)

    def to_dict(self) -> dict:
        per_muscle = {
            name: {
                "r2": _json_float(r2),
                "nrmse": _json_float(e),
                "r": _json_float(r),
                "reference_range": float(span),
            }
            for name, r2, e, r, span in zip(
                self.columns, self.r2, self.nrmse, self.r, self.reference_range
            )
        }
        data = {} if self.span_s is None else {"span_s": list(self.span_s)}
        return {
            **data,
            "samples": self.samples,
            "per_muscle": per_muscle,
            "mean": {
                "r2": _json_float(self.mean_r2),
                "r2_muscles": count(self.r2),
                "nrmse": _json_float(self.mean_nrmse),
                "nrmse_muscles": count(self.nrmse),
                "r": _json_float(self.mean_r),
                "r_muscles": count(self.r),
                "muscles": len(self.columns),
            },
        }


def score(aligned: AlignedSeries, full_scale: np.ndarray | float = 1.0) -> Scores:
    """R^2, NRMSE and r per column of an aligned comparison (definitions: module doc).

    ``full_scale`` (C,) or scalar: 1 for activations, each muscle's maximum isometric
    force (N) for forces.
    """
    return score_samples(
        aligned.reference,
        aligned.prediction,
        aligned.columns,
        full_scale,
        span_s=(float(aligned.time[0]), float(aligned.time[-1])),
    )


def score_samples(
    reference: np.ndarray,
    prediction: np.ndarray,
    columns: Sequence[str],
    full_scale: np.ndarray | float = 1.0,
    span_s: tuple[float, float] | None = None,
) -> Scores:
    """``score`` of paired samples (N, C) that need no alignment."""
    y, y_hat = _pair(reference, prediction)
    y, y_hat = y.reshape(y.shape[0], -1), y_hat.reshape(y_hat.shape[0], -1)
    scale = np.broadcast_to(np.asarray(full_scale, dtype=np.float64), (y.shape[1],)).copy()
    if not np.all(np.isfinite(scale) & (scale > 0)):
        raise MetricsError(f"full scale must be positive and finite per column, got {scale}")
    reference_range = y.max(axis=0) - y.min(axis=0)
    estimate_range = y_hat.max(axis=0) - y_hat.min(axis=0)
    r2 = np.where(reference_range >= R2_MIN_RANGE * scale, r_squared(y, y_hat), np.nan)
    flat = (reference_range < FLAT_RANGE * scale) | (estimate_range < FLAT_RANGE * scale)
    return Scores(
        columns=tuple(columns),
        r2=r2,
        nrmse=nrmse(y, y_hat, R2_MIN_RANGE * scale),
        r=np.where(flat, np.nan, pearson_r(y, y_hat)),
        reference_range=reference_range,
        full_scale=scale,
        span_s=span_s,
        samples=int(y.shape[0]),
    )


def count(values: np.ndarray) -> int:
    """How many of ``values`` are defined (finite)."""
    return int(np.count_nonzero(np.isfinite(values)))


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _json_float(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
