"""Monomials of the coordinates and their exact derivatives.

A term is prod_j q_j ** e[p, j] for an exponent row e[p] with one entry per
coordinate (``calib.coordinates.COORDINATES``); muscle-tendon lengths are
linear combinations of such terms.
"""

from __future__ import annotations

import numpy as np


def monomials(q: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """Terms prod_j q_j ** e[p, j], shape (..., P), for q (..., K) and exponents (P, K)."""
    return _terms(_powers(q, exponents), exponents)


def monomial_gradients(q: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """d term_p / d q_j exactly, shape (..., P, K)."""
    powers = _powers(q, exponents)
    columns = []
    for j in range(exponents.shape[1]):
        lowered = exponents.copy()
        lowered[:, j] = np.maximum(exponents[:, j] - 1, 0)
        columns.append(_terms(powers, lowered) * exponents[:, j])
    return np.stack(columns, axis=-1)


def _powers(q: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """q ** k for k = 0..max exponent, shape (D + 1, ..., K)."""
    max_degree = int(exponents.max(initial=0))
    out = np.empty((max_degree + 1, *q.shape))
    out[0] = 1.0
    for k in range(1, max_degree + 1):
        out[k] = out[k - 1] * q
    return out


def _terms(powers: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    terms = powers[exponents[:, 0], ..., 0]
    for j in range(1, exponents.shape[1]):
        terms = terms * powers[exponents[:, j], ..., j]
    return np.moveaxis(terms, 0, -1)
