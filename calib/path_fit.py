"""Fit muscle-tendon length polynomials to sampled lengths and moment arms.

The fit is a least-squares problem over a total-degree monomial basis in the
coordinates a muscle crosses (one to four of the five). Samples carry both the
length and the moment arms (r = -dl/dq) so the derivative is fitted too (a
Sobolev fit): the physics uses moment arms, and kinks in OpenSim's paths
(conditional via points, wrapping surfaces) make a length-only fit wiggle in
its derivative. The basis is evaluated in variables scaled to [-1, 1] over the
fitted range for conditioning, and the result is expanded exactly into
raw-radian monomials, the form ``subject.json`` stores, each coefficient kept
to ``COEFFICIENT_DIGITS`` significant digits.

The degree is chosen by held-out error: each candidate degree is fitted on the
training poses and scored on separate poses; the lowest degree whose score is
within ``DEGREE_TOLERANCE`` of the best, or below ``GOOD_ENOUGH_SCORE``, wins
(the smoothest of the good fits). Degrees whose basis exceeds ``MAX_TERMS``
monomials are not tried: the runtime evaluates every term at every sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from math import comb

import numpy as np

from calib.coordinates import COORDINATES
from calib.polynomial import monomial_gradients, monomials
from calib.subject import PathPolynomial

# Where the fit must meet the accuracy targets (deg): walking and more; the knee reaches
# 10 deg into hyperextension, which walking's straight knee at heel strike can touch.
CHECK_RANGE_DEG = {
    "hip_flexion": (-30.0, 60.0),
    "hip_adduction": (-15.0, 15.0),
    "hip_rotation": (-15.0, 15.0),
    "knee_angle": (-110.0, 10.0),
    "ankle_angle": (-30.0, 25.0),
}

LENGTH_TARGET_M = 1e-3
MOMENT_ARM_TARGET_M = 3e-3
DEGREE_TOLERANCE = 1.1
# A held-out score this small (10 % of the targets) is good enough: no higher degree is kept.
GOOD_ENOUGH_SCORE = 0.1
# At most this many monomials per muscle: total degree 5 in four coordinates, 7 in three.
MAX_TERMS = 126
# Significant digits of a stored raw-radian coefficient (relative rounding 5e-10).
COEFFICIENT_DIGITS = 9


@dataclass(frozen=True)
class PathSamples:
    """OpenSim's truth at a set of poses: ``q`` (N, 5) rad, ``length`` (N,) m,
    ``moment_arm`` (N, 5) m, coordinates in ``COORDINATES`` order."""

    q: np.ndarray
    length: np.ndarray
    moment_arm: np.ndarray


@dataclass(frozen=True)
class FitSettings:
    """How a path is fitted.

    ``ranges``: the fitted range (lo, hi) rad per coordinate, in ``COORDINATES``
    order; ``degrees``: candidate total degrees; ``max_terms``: the largest basis
    tried; ``moment_arm_weight``: weight (1/rad) of moment-arm residuals against
    length residuals, 1/3 balances the 1 mm and 3 mm targets.
    """

    ranges: tuple[tuple[float, float], ...]
    degrees: tuple[int, ...] = tuple(range(2, 11))
    max_terms: int = MAX_TERMS
    moment_arm_weight: float = LENGTH_TARGET_M / MOMENT_ARM_TARGET_M


@dataclass(frozen=True)
class FitError:
    """RMS and max error (m) of a path against samples: of the length, and of the
    moment arm about each coordinate (``COORDINATES`` order; about a coordinate the
    muscle does not cross, the polynomial's arm is 0 and the error is OpenSim's arm)."""

    length_rms: float
    length_max: float
    moment_arm_rms: tuple[float, ...]
    moment_arm_max: tuple[float, ...]

    @property
    def score(self) -> float:
        """Worst error relative to its target (<= 1 meets both targets)."""
        return max(
            self.length_rms / LENGTH_TARGET_M, max(self.moment_arm_rms) / MOMENT_ARM_TARGET_M
        )


def total_degree_exponents(crosses: tuple[str, ...], degree: int) -> np.ndarray:
    """All exponent rows (P, 5) of total degree <= ``degree`` in the crossed coordinates."""
    active = [COORDINATES.index(c) for c in crosses]
    rows = []
    for powers in product(range(degree + 1), repeat=len(active)):
        if sum(powers) <= degree:
            row = [0] * len(COORDINATES)
            for j, p in zip(active, powers):
                row[j] = p
            rows.append(row)
    rows.sort(key=lambda r: (sum(r), [-x for x in r]))
    return np.array(rows, dtype=np.int64)


def _design(
    x: np.ndarray, exps: np.ndarray, half: np.ndarray, weight: float, active: list[int]
) -> np.ndarray:
    """Rows for lengths, then r = -dl/dq_j for each crossed j, in scaled x = (q - mid) / half."""
    gradients = monomial_gradients(x, exps) / half  # dl/dq_j = dl/dx_j / half_j
    blocks = [monomials(x, exps)] + [-weight * gradients[..., j] for j in active]
    return np.concatenate(blocks, axis=0)


def _to_raw(
    coef: np.ndarray, exps: np.ndarray, mid: np.ndarray, half: np.ndarray
) -> dict[tuple[int, ...], float]:
    """Expand sum c * prod ((q_j - mid_j) / half_j) ** e_j into raw monomials of q."""
    raw: dict[tuple[int, ...], float] = {}
    for c, e in zip(coef, exps):
        # ((q - m) / h) ** n = sum_k C(n, k) q**k (-m)**(n-k) / h**n, per coordinate
        per_coordinate = [
            [comb(int(n), k) * (-mid[j]) ** (int(n) - k) / half[j] ** int(n) for k in range(n + 1)]
            for j, n in enumerate(e)
        ]
        for powers in product(*(range(len(p)) for p in per_coordinate)):
            term = c
            for j, k in enumerate(powers):
                term *= per_coordinate[j][k]
            raw[powers] = raw.get(powers, 0.0) + term
    return raw


def _round(value: float) -> float:
    return float(f"{value:.{COEFFICIENT_DIGITS}g}")


def fit_degree(
    samples: PathSamples, crosses: tuple[str, ...], degree: int, settings: FitSettings
) -> PathPolynomial:
    """Least-squares fit of lengths and the crossed coordinates' moment arms at one total degree."""
    lo, hi = np.array(settings.ranges, dtype=np.float64).T
    mid, half = (hi + lo) / 2, (hi - lo) / 2
    active = [COORDINATES.index(c) for c in crosses]
    exps = total_degree_exponents(crosses, degree)
    x = (samples.q - mid) / half
    w = settings.moment_arm_weight
    a = _design(x, exps, half, w, active)
    b = np.concatenate([samples.length] + [w * samples.moment_arm[:, j] for j in active])
    norms = np.linalg.norm(a, axis=0)
    norms[norms == 0] = 1.0
    coef = np.linalg.lstsq(a / norms, b, rcond=None)[0] / norms
    raw = _to_raw(coef, exps, mid, half)
    keys = sorted(raw, key=lambda e: (sum(e), [-v for v in e]))
    return PathPolynomial(
        crosses=tuple(crosses),
        exponents=tuple(keys),
        coefficients=tuple(_round(raw[k]) for k in keys),
    )


def evaluate_path(path: PathPolynomial, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Length (N,) m and moment arms (N, 5) m of one path polynomial at q (N, 5) rad."""
    exps = np.array(path.exponents, dtype=np.int64)
    coef = np.array(path.coefficients)
    return monomials(q, exps) @ coef, -np.einsum("npj,p->nj", monomial_gradients(q, exps), coef)


def path_error(path: PathPolynomial, samples: PathSamples) -> FitError:
    """Errors of ``path`` against OpenSim's samples."""
    length, arms = evaluate_path(path, samples.q)
    dl = np.abs(length - samples.length)
    dr = np.abs(arms - samples.moment_arm)
    return FitError(
        length_rms=float(np.sqrt(np.mean(dl**2))),
        length_max=float(dl.max()),
        moment_arm_rms=tuple(float(v) for v in np.sqrt(np.mean(dr**2, axis=0))),
        moment_arm_max=tuple(float(v) for v in dr.max(axis=0)),
    )


def fit_path(
    train: PathSamples, held_out: PathSamples, crosses: tuple[str, ...], settings: FitSettings
) -> tuple[PathPolynomial, int, FitError]:
    """Fit every candidate degree on ``train``; keep the smoothest whose held-out score is near
    the best.

    Returns the polynomial, its degree and its held-out error. Degrees whose
    basis has more than ``settings.max_terms`` terms, or more terms than the
    training samples can determine, are not tried.
    """
    candidates = []
    for degree in settings.degrees:
        n_terms = comb(degree + len(crosses), len(crosses))
        if n_terms > min(settings.max_terms, len(train.length)):
            break
        path = fit_degree(train, crosses, degree, settings)
        candidates.append((degree, path, path_error(path, held_out)))
    if not candidates:
        raise ValueError(
            f"too few training poses ({len(train.length)}) or terms allowed "
            f"({settings.max_terms}) for any degree in {settings.degrees}"
        )
    best = min(c[2].score for c in candidates)
    accept = max(DEGREE_TOLERANCE * best, GOOD_ENOUGH_SCORE)
    return next((p, d, e) for d, p, e in candidates if e.score <= accept)
