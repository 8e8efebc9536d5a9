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
def answer_kernel(
    t,
    q,
    rate_hz,
    w_vel,
    w_acc,
    grid,
    features,
    input_columns,
    input32,
    row,
    newest,
    slope,
    horizon_s,
    activations,
    pose_index,
    pose,
    pose_rate,
    coordinates,
    exponents,
    row_start,
    term,
    coefficient,
    params,
    powers,
    basis,
    gradient,
    out,
    report_index,
    torque_index,
    reported_activations,
    reported_forces,
    torques,
):  # pragma: no cover - compiled
    """Build the window ending at t[-1] (``window_features``), carry the activations
    (``extrapolate``: clip(newest + slope * horizon_s) into ``activations``), place the
    window's row ``row`` of the measured coordinates into the subject's whole pose
    (``pose[pose_index[c]]``, ``pose_rate``; the unmeasured ones stay as they are, at 0),
    evaluate the Hill model there (``hill_kernel`` into ``out``) and copy the reported
    muscles' activations and forces (``report_index``) and the torques about the
    balanced coordinates (``torque_index``); returns whether every force and torque is
    finite."""
    window_features(t, q, rate_hz, w_vel, w_acc, grid, features, input_columns, input32)
    extrapolate(newest, slope, horizon_s, activations)
    for c in range(pose_index.shape[0]):
        pose[pose_index[c]] = features[row, 3 * c]
        pose_rate[pose_index[c]] = features[row, 3 * c + 1]
    finite = hill_kernel(
        coordinates,
        activations,
        pose,
        pose_rate,
        exponents,
        row_start,
        term,
        coefficient,
        params,
        powers,
        basis,
        gradient,
        out,
    )
    n_muscles = params.shape[0]
    for k in range(report_index.shape[0]):
        reported_activations[k] = activations[report_index[k]]
        reported_forces[k] = out[report_index[k]]
    for k in range(torque_index.shape[0]):
        torques[k] = out[2 * n_muscles + torque_index[k]]
    return finite
