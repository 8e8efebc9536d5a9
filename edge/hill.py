"""Hill-type muscle forces and joint torques for one sample, Numba-jitted.

The runtime's copy of ``train.hill`` (edge never imports train): the same
Thelen 2003 curves with the constants gait2392 sets, pennation at constant
fibre thickness, a rigid tendon, and tau = R^T F with R = -dl_mt/dq from the
subject's path polynomials (eqs. 17-20). A test holds the two equal to 1e-6.

Differences from the training side, on purpose: activations are clipped to
[0, 1] before the force is computed (a network's raw output may stray outside;
the device must never act on a negative or supra-maximal activation), and
everything runs in float64 on preallocated buffers, so a call allocates
nothing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

# Thelen 2003 shape constants as every gait2392 muscle sets them (see train/hill.py).
ACTIVE_SHAPE = 0.5  # KshapeActive
PASSIVE_SHAPE = 4.0  # KshapePassive
PASSIVE_STRAIN = 0.6  # FmaxMuscleStrain
AF = 0.3  # Af
FLEN = 1.8  # Flen
EXTRAPOLATION_THRESHOLD = 0.95  # fv_linear_extrap_threshold
MAX_PENNATION = math.acos(0.1)  # rad, MuscleFixedWidthPennationModel's cap

# Columns of HillModel's per-muscle parameter table.
_FMAX, _LOPT, _LSLACK, _HEIGHT, _FLOOR, _VSCALE = range(6)


def _eccentric_knee() -> tuple[float, float]:
    """(v0, df/dv): where the lengthening branch of f_v turns linear, and its slope."""
    k = 2.0 + 2.0 / AF
    f0 = EXTRAPOLATION_THRESHOLD * FLEN
    b = k * (FLEN - f0) / (FLEN - 1.0)
    dv_df = 1.0 / b + (f0 - 1.0) * k / ((FLEN - 1.0) * b * b)
    return (f0 - 1.0) / b, 1.0 / dv_df


_KNEE_VELOCITY, _KNEE_SLOPE = _eccentric_knee()
_PASSIVE_DENOMINATOR = math.expm1(PASSIVE_SHAPE)


@njit(cache=True, fastmath=False)
def _force_velocity(v: float) -> float:
    """f_v of the normalised fibre velocity (lengthening positive), OpenSim's Thelen 2003
    at a = 1."""
    if v <= 0.0:
        if v <= -1.0:
            return 0.0
        return (1.0 + v) / (1.0 - v / AF)
    clamped = min(v, _KNEE_VELOCITY)
    k = clamped * (2.0 + 2.0 / AF)
    f = (k * FLEN + FLEN - 1.0) / (k + FLEN - 1.0)
    if v > _KNEE_VELOCITY:
        f += _KNEE_SLOPE * (v - _KNEE_VELOCITY)
    return f


@njit(cache=True, fastmath=False)
def hill_kernel(
    coordinates: tuple[int, ...],
    a: np.ndarray,
    q: np.ndarray,
    qd: np.ndarray,
    exponents: np.ndarray,
    row_start: np.ndarray,
    term: np.ndarray,
    coefficient: np.ndarray,
    params: np.ndarray,
    powers: np.ndarray,
    basis: np.ndarray,
    gradient: np.ndarray,
    out: np.ndarray,
) -> bool:
    """One sample: writes force (M), active force (M) and torque (J) into ``out`` (2M + J);
    returns whether all of them are finite.

    ``coordinates``: (0, 1, ..., J-1), a tuple, so that the compiler knows the number
    of coordinates as a constant and unrolls the short loops over them (2x faster
    than a count read from an array's shape). ``a`` (M,) activations (clipped to
    [0, 1]); ``q`` (J,) rad; ``qd`` (J,) rad/s.
    Paths: ``exponents`` (P, J) monomials and, per muscle m, the nonzero
    coefficients ``coefficient[row_start[m]:row_start[m+1]]`` of terms ``term[...]``.
    ``params`` (M, 6): F_max N, l_o m, l_ts m, fibre thickness m, floor of the
    fibre's projection m, v_max * l_o m/s. ``powers`` (J, K+1), ``basis`` (P, J+1)
    (each monomial and its derivative along every coordinate) and ``gradient`` (J,)
    are work buffers.
    """
    n_muscles = params.shape[0]
    n_coordinates = len(coordinates)
    degree = powers.shape[1] - 1
    for j in range(n_coordinates):
        powers[j, 0] = 1.0
        for k in range(1, degree + 1):
            powers[j, k] = powers[j, k - 1] * q[j]
    # Scalar accumulators throughout: a sum kept in an array the compiler cannot prove
    # apart from the others would go through memory at every term.
    for p in range(exponents.shape[0]):
        value = 1.0
        for j in range(n_coordinates):
            value *= powers[j, exponents[p, j]]
        basis[p, 0] = value
        for d in range(n_coordinates):
            e = exponents[p, d]
            derivative = 0.0
            if e > 0:
                derivative = e * powers[d, e - 1]
                for j in range(n_coordinates):
                    if j != d:
                        derivative *= powers[j, exponents[p, j]]
            basis[p, d + 1] = derivative
    for j in range(n_coordinates):
        out[2 * n_muscles + j] = 0.0
    for m in range(n_muscles):
        start = row_start[m]
        stop = row_start[m + 1]
        length = 0.0
        for i in range(start, stop):
            length += coefficient[i] * basis[term[i], 0]
        for j in range(n_coordinates):
            g = 0.0
            for i in range(start, stop):
                g += coefficient[i] * basis[term[i], j + 1]
            gradient[j] = g
        v_mt = 0.0  # = -R qd
        for j in range(n_coordinates):
            v_mt += gradient[j] * qd[j]
        height = params[m, _HEIGHT]
        along = max(length - params[m, _LSLACK], params[m, _FLOOR])  # eq. (20), rigid tendon
        fiber = math.sqrt(height * height + along * along)  # eq. (19), constant thickness
        cos_pennation = along / fiber
        l_norm = fiber / params[m, _LOPT]
        v_norm = v_mt * cos_pennation / params[m, _VSCALE]
        activation = min(max(a[m], 0.0), 1.0)
        f_active = math.exp(-((l_norm - 1.0) ** 2) / ACTIVE_SHAPE)
        strain = l_norm - 1.0
        f_passive = 0.0
        if strain > 0.0:
            f_passive = math.expm1(PASSIVE_SHAPE * strain / PASSIVE_STRAIN) / _PASSIVE_DENOMINATOR
        along_tendon = params[m, _FMAX] * cos_pennation
        active = along_tendon * activation * _force_velocity(v_norm) * f_active  # eq. (18)
        total = active + along_tendon * f_passive
        out[m] = total
        out[n_muscles + m] = active
        for j in range(n_coordinates):
            out[2 * n_muscles + j] -= gradient[j] * total  # eq. (17): tau = R^T F, R = -dl/dq
    checksum = 0.0  # finite only when every term is
    for i in range(out.shape[0]):
        checksum += out[i]
    return math.isfinite(checksum)


class HillModel:
    """A subject's muscles, ready for the real-time loop.

    ``evaluate(a, q, qd)`` returns ``(force, active_force, torque)``: muscle-tendon
    forces (M,) N, their active part (M,) N and the joint torques (J,) N m about the
    subject's coordinates (``coordinates``, in order). They are views of buffers owned by the
    model and are overwritten by the next call: copy them to keep them. Inputs
    (any float dtype, arrays or sequences) are copied into float64 buffers, so
    one compiled kernel serves every caller; call ``warmup()`` before the loop
    so the JIT compilation (or the load from Numba's cache) happens there.
    """

    def __init__(self, subject: Any) -> None:
        arrays = subject.muscle_arrays()
        self.muscle_names = tuple(subject.muscle_names)
        self.n_muscles = len(self.muscle_names)
        self.coordinates = tuple(subject.coordinates)
        j = self.n_coordinates = arrays.path_exponents.shape[1]
        l_o = arrays.optimal_fiber_length
        phi_o = arrays.pennation_at_optimal
        height = l_o * np.sin(phi_o)
        pennated = phi_o > 1e-12
        shortest = np.where(pennated, height / math.sin(MAX_PENNATION), 0.01 * l_o)
        floor = np.where(pennated, shortest * math.cos(MAX_PENNATION), shortest)
        self._params = np.ascontiguousarray(
            np.stack(
                [
                    arrays.max_isometric_force,
                    l_o,
                    arrays.tendon_slack_length,
                    height,
                    floor,
                    arrays.max_contraction_velocity * l_o,
                ],
                axis=1,
            ),
            dtype=np.float64,
        )
        self._exponents = np.ascontiguousarray(arrays.path_exponents, dtype=np.int64)
        nonzero = arrays.path_coefficients != 0.0
        self._row_start = np.concatenate([[0], np.cumsum(nonzero.sum(axis=1))]).astype(np.int64)
        self._term = np.ascontiguousarray(np.nonzero(nonzero)[1], dtype=np.int64)
        self._coefficient = np.ascontiguousarray(arrays.path_coefficients[nonzero], np.float64)
        degree = int(self._exponents.max()) if self._exponents.size else 0
        self._powers = np.zeros((j, degree + 1))
        self._basis = np.zeros((self._exponents.shape[0], j + 1))
        self._gradient = np.zeros(j)
        self.coordinate_index = tuple(range(j))
        self._finite = True
        self._out = np.zeros(2 * self.n_muscles + j)
        self._a = np.zeros(self.n_muscles)
        self._q = np.zeros(j)
        self._qd = np.zeros(j)
        m = self.n_muscles
        self.force = self._out[:m]
        self.active_force = self._out[m : 2 * m]
        self.torque = self._out[2 * m :]

    def evaluate(self, a: np.ndarray, q: np.ndarray, qd: np.ndarray):
        """Forces (M,), active forces (M,) N and torques (J,) N m for activations a (M,),
        q (J,) rad and qd (J,) rad/s; activations are clipped to [0, 1]. float64 arrays of
        the right shapes are read in place, anything else is copied first. ``finite()``
        tells afterwards whether every output is finite."""
        try:
            a = _float64(self._a, a)
            q = _float64(self._q, q)
            qd = _float64(self._qd, qd)
        except ValueError as exc:
            raise ValueError(
                f"expected activations ({self.n_muscles},), q ({self.n_coordinates},) rad and "
                f"qd ({self.n_coordinates},) rad/s: {exc}"
            ) from exc
        self._finite = hill_kernel(self.coordinate_index, a, q, qd, *self.kernel_buffers)
        return self.force, self.active_force, self.torque

    @property
    def kernel_buffers(self) -> tuple[np.ndarray, ...]:
        """The arguments of ``hill_kernel`` after ``coordinates``, ``a``, ``q`` and ``qd`` (for
        a compiled caller, with ``coordinate_index``); the results land in ``force``,
        ``active_force`` and ``torque``."""
        return (
            self._exponents,
            self._row_start,
            self._term,
            self._coefficient,
            self._params,
            self._powers,
            self._basis,
            self._gradient,
            self._out,
        )

    def finite(self) -> bool:
        """Whether the last ``evaluate`` gave finite forces and torques."""
        return self._finite

    def warmup(self) -> None:
        """Compile the kernel (or load it from Numba's cache) before the real-time loop, for
        contiguous inputs and for the strided rows of a feature table (edge.window)."""
        j = self.n_coordinates
        a = np.full(self.n_muscles, 0.1)
        self.evaluate(a, np.zeros(j), np.zeros(j))
        rows = np.zeros((2, 3 * j))
        self.evaluate(a, rows[0, 0::3], rows[0, 1::3])


def _float64(buffer: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``x`` when it is a float64 array of ``buffer``'s shape, else ``buffer`` filled from it."""
    if type(x) is np.ndarray and x.dtype == np.float64 and x.shape == buffer.shape:
        return x
    buffer[:] = x
    return buffer
