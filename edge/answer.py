"""One compiled call per sample: its window, its carried activations, its forces and torques.

On a machine whose caches the rest of the system keeps cold, every call into
compiled code costs several microseconds before any work is done, so the answer
path makes one: ``answer_kernel`` runs the window kernel (edge.window), the
activation carry (edge.inference) and the Hill kernel (edge.hill) in turn, each
the same compiled function the rest of the package and its tests use.
"""

from __future__ import annotations

from numba import njit

from edge.hill import hill_kernel
from edge.inference import extrapolate
from edge.window import window_features


@njit(cache=True)
def answer_kernel(t, q, rate_hz, w_vel, w_acc, grid, features, input32, row,
                  newest, slope, horizon_s, activations, coordinates, exponents, row_start,
                  term, coefficient, params, powers, basis, gradient,
                  out):  # pragma: no cover - compiled
    """Build the window ending at t[-1] (``window_features``), carry the activations
    (``extrapolate``: clip(newest + slope * horizon_s) into ``activations``) and evaluate
    the Hill model on the window's row ``row`` (``hill_kernel`` into ``out``); returns
    whether every force and torque is finite."""
    window_features(t, q, rate_hz, w_vel, w_acc, grid, features, input32)
    extrapolate(newest, slope, horizon_s, activations)
    return hill_kernel(coordinates, activations, features[row, 0::3], features[row, 1::3],
                       exponents, row_start, term, coefficient, params, powers, basis,
                       gradient, out)
