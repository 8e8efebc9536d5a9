"""Monomials of the joint angles and their exact derivatives.

A term is prod_j q_j ** e[p, j] for an exponent row e[p] = (e_hip, e_knee,
e_ankle); muscle-tendon lengths are linear combinations of such terms.
"""

from __future__ import annotations

import numpy as np


def monomials(q: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """Terms prod_j q_j ** e[p, j], shape (..., P), for q (..., 3) and exponents (P, 3)."""
    return _terms(_powers(q, exponents), exponents)


def monomial_gradients(q: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """d term_p / d q_j exactly, shape (..., P, 3)."""
    powers = _powers(q, exponents)
    columns = []
    for j in range(3):
        lowered = exponents.copy()
        lowered[:, j] = np.maximum(exponents[:, j] - 1, 0)
        columns.append(_terms(powers, lowered) * exponents[:, j])
    return np.stack(columns, axis=-1)


def _powers(q: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """q ** k for k = 0..max exponent, shape (K + 1, ..., 3)."""
    max_degree = int(exponents.max(initial=0))
    out = np.empty((max_degree + 1,) + q.shape)
    out[0] = 1.0
    for k in range(1, max_degree + 1):
        out[k] = out[k - 1] * q
    return out


def _terms(powers: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    terms = (
        powers[exponents[:, 0], ..., 0]
        * powers[exponents[:, 1], ..., 1]
        * powers[exponents[:, 2], ..., 2]
    )
    return np.moveaxis(terms, 0, -1)
