"""Fit muscle-tendon length polynomials to sampled lengths and moment arms.

The fit is a least-squares problem over a total-degree monomial basis in the
joints a muscle crosses. Samples carry both the length and the moment arms
(r = -dl/dq) so the derivative is fitted too (a Sobolev fit): the physics uses
moment arms, and kinks in OpenSim's paths (conditional via points) make a
length-only fit wiggle in its derivative. The basis is evaluated in variables
scaled to [-1, 1] over the fitted range for conditioning and the result is
expanded exactly into raw-radian monomials, the form ``subject.json`` stores.

The degree is chosen by held-out error: each candidate degree is fitted on the
training poses and scored on separate poses; the lowest degree whose score is
within ``DEGREE_TOLERANCE`` of the best, or below ``GOOD_ENOUGH_SCORE``, wins
(the smoothest of the good fits).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from math import comb

import numpy as np

from calib.polynomial import monomial_gradients, monomials
from calib.subject import JOINT_NAMES, PathPolynomial

LENGTH_TARGET_M = 1e-3
MOMENT_ARM_TARGET_M = 3e-3
DEGREE_TOLERANCE = 1.1
# A held-out score this small (5 % of the targets) is good enough: no higher degree is tried.
GOOD_ENOUGH_SCORE = 0.05


@dataclass(frozen=True)
class PathSamples:
    """OpenSim's truth at a set of poses: ``q`` (N, 3) rad, ``length`` (N,) m, ``moment_arm`` (N, 3) m."""

    q: np.ndarray
    length: np.ndarray
    moment_arm: np.ndarray


@dataclass(frozen=True)
class FitSettings:
    """How a path is fitted.

    ``degrees``: candidate total degrees; ``moment_arm_weight``: weight (1/rad)
    of moment-arm residuals against length residuals, 1/3 balances the 1 mm and
    3 mm targets; ``joint_range``: the fitted range (lo, hi) rad per joint.
    """

    joint_range: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
    degrees: tuple[int, ...] = tuple(range(2, 11))
    moment_arm_weight: float = LENGTH_TARGET_M / MOMENT_ARM_TARGET_M


@dataclass(frozen=True)
class FitError:
    """RMS and max error (m) of a path against samples.

    Moment-arm RMS is over the joints the muscle crosses (the zeros of the
    others would dilute it); the max is over all three joints, so a neglected
    dependence on an uncrossed joint still shows.
    """

    length_rms: float
    length_max: float
    moment_arm_rms: float
    moment_arm_max: float

    @property
    def score(self) -> float:
        """Worst error relative to its target (<= 1 meets both targets)."""
        return max(self.length_rms / LENGTH_TARGET_M, self.moment_arm_rms / MOMENT_ARM_TARGET_M)


def total_degree_exponents(crosses: tuple[str, ...], degree: int) -> np.ndarray:
    """All exponent rows (P, 3) of total degree <= ``degree`` in the crossed joints."""
    active = [JOINT_NAMES.index(j) for j in crosses]
    rows = []
    for powers in product(range(degree + 1), repeat=len(active)):
        if sum(powers) <= degree:
            row = [0, 0, 0]
            for j, p in zip(active, powers):
                row[j] = p
            rows.append(row)
    rows.sort(key=lambda r: (sum(r), [-x for x in r]))
    return np.array(rows, dtype=np.int64)


def _design(x: np.ndarray, exps: np.ndarray, half: np.ndarray, weight: float) -> np.ndarray:
    """Rows for lengths then r = -dl/dq_j for j = 0..2, in scaled variables x = (q - mid) / half."""
    gradients = monomial_gradients(x, exps) / half  # dl/dq_j = dl/dx_j / half_j
    blocks = [monomials(x, exps)] + [-weight * gradients[..., j] for j in range(3)]
    return np.concatenate(blocks, axis=0)


def _to_raw(
    coef: np.ndarray, exps: np.ndarray, mid: np.ndarray, half: np.ndarray
) -> dict[tuple[int, int, int], float]:
    """Expand sum c * prod ((q_j - mid_j) / half_j) ** e_j into raw monomials of q."""
    raw: dict[tuple[int, int, int], float] = {}
    for c, e in zip(coef, exps):
        per_joint = []
        for j in range(3):
            n = int(e[j])
            # ((q - m) / h) ** n = sum_k C(n, k) q**k (-m)**(n-k) / h**n
            per_joint.append(
                [comb(n, k) * (-mid[j]) ** (n - k) / half[j] ** n for k in range(n + 1)]
            )
        for k0, a in enumerate(per_joint[0]):
            for k1, b in enumerate(per_joint[1]):
                for k2, d in enumerate(per_joint[2]):
                    key = (k0, k1, k2)
                    raw[key] = raw.get(key, 0.0) + c * a * b * d
    return raw


def fit_degree(
    samples: PathSamples, crosses: tuple[str, ...], degree: int, settings: FitSettings
) -> PathPolynomial:
    """Least-squares fit of lengths and moment arms at one total degree."""
    lo = np.array([r[0] for r in settings.joint_range])
    hi = np.array([r[1] for r in settings.joint_range])
    mid, half = (hi + lo) / 2, (hi - lo) / 2
    exps = total_degree_exponents(crosses, degree)
    x = (samples.q - mid) / half
    w = settings.moment_arm_weight
    a = _design(x, exps, half, w)
    b = np.concatenate([samples.length, w * samples.moment_arm.T.reshape(-1)])
    norms = np.linalg.norm(a, axis=0)
    norms[norms == 0] = 1.0
    coef = np.linalg.lstsq(a / norms, b, rcond=None)[0] / norms
    raw = _to_raw(coef, exps, mid, half)
    keys = sorted(raw, key=lambda e: (sum(e), [-v for v in e]))
    return PathPolynomial(
        crosses=tuple(crosses),
        exponents=tuple(keys),
        coefficients=tuple(float(raw[k]) for k in keys),
    )


def evaluate_path(path: PathPolynomial, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Length (N,) m and moment arms (N, 3) m of one path polynomial at q (N, 3) rad."""
    exps = np.array(path.exponents, dtype=np.int64)
    coef = np.array(path.coefficients)
    return monomials(q, exps) @ coef, -np.einsum("npj,p->nj", monomial_gradients(q, exps), coef)


def path_error(path: PathPolynomial, samples: PathSamples) -> FitError:
    """Errors of ``path`` against OpenSim's samples."""
    length, arms = evaluate_path(path, samples.q)
    dl = np.abs(length - samples.length)
    dr = np.abs(arms - samples.moment_arm)
    crossed = [JOINT_NAMES.index(j) for j in path.crosses]
    return FitError(
        length_rms=float(np.sqrt(np.mean(dl**2))),
        length_max=float(dl.max()),
        moment_arm_rms=float(np.sqrt(np.mean(dr[:, crossed] ** 2))),
        moment_arm_max=float(dr.max()),
    )


def fit_path(
    train: PathSamples, held_out: PathSamples, crosses: tuple[str, ...], settings: FitSettings
) -> tuple[PathPolynomial, int, FitError]:
    """Fit every candidate degree on ``train``; keep the smoothest whose held-out score is near the best.

    Returns the polynomial, its degree and its held-out error. Degrees whose
    basis has more terms than the training samples can determine are skipped.
    """
    candidates = []
    for degree in settings.degrees:
        n_terms = comb(degree + len(crosses), len(crosses))
        if n_terms > len(train.length):
            break
        path = fit_degree(train, crosses, degree, settings)
        candidates.append((degree, path, path_error(path, held_out)))
    if not candidates:
        raise ValueError(
            f"too few training poses ({len(train.length)}) for any degree in {settings.degrees}"
        )
    best = min(c[2].score for c in candidates)
    accept = max(DEGREE_TOLERANCE * best, GOOD_ENOUGH_SCORE)
    return next((p, d, e) for d, p, e in candidates if e.score <= accept)
