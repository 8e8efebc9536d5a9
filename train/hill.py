"""Hill-type muscle model of eqs. 17-20 in torch: OpenSim's Thelen2003Muscle, rigid tendon.

The curves are those of OpenSim's ``Thelen2003Muscle`` (Thelen 2003), with the
constants every muscle of gait2392 (``gait2392_thelen2003muscle.osim``) sets:
``KshapeActive = 0.5``, ``KshapePassive = 4``, ``FmaxMuscleStrain = 0.6``,
``Af = 0.3``, ``Flen = 1.8`` and OpenSim's default eccentric extrapolation
threshold 0.95 (OpenSim's own class defaults differ slightly: 0.45, 5, 0.25).

- Active force-length: f_a = exp(-(l - 1)^2 / KshapeActive), l = l_m / l_o.
- Passive force-length: f_p = (exp(KshapePassive (l - 1) / FmaxMuscleStrain) - 1)
  / (exp(KshapePassive) - 1) for l > 1, else 0.
- Force-velocity: Thelen's eqs. 6-7 give fibre velocity from force; OpenSim
  inverts them. Its velocity scale (0.25 + 0.75 a) depends on activation, but
  OpenSim's static optimisation evaluates the curve at a = 1
  (``calcInextensibleTendonActiveFiberForce(s, 1.0)``) and scales by a, which
  keeps force linear in activation as eq. 18 writes it; so does this module.
  In closed form, with v = v_m / (v_max l_o):
  shortening (-1 < v <= 0): f_v = (1 + v) / (1 - v / Af);
  lengthening: f_v = (c Flen + Flen - 1) / (c + Flen - 1), c = v (2 + 2 / Af),
  continued linearly beyond f_v = 0.95 Flen as OpenSim does; faster shortening
  than v_max gives f_v = 0 (OpenSim extrapolates to negative force, which a
  fibre cannot produce).
- Pennation at constant fibre thickness h = l_o sin(phi_o) (eq. 19) and a
  rigid tendon l_t = l_ts (eq. 20): the fibre's projection on the tendon is
  x = l_mt - l_ts, so l_m = sqrt(h^2 + x^2), cos(phi) = x / l_m, and the fibre
  velocity is v_m = v_mt cos(phi). As in OpenSim's MuscleFixedWidthPennationModel,
  pennation is capped at acos(0.1) (about 84 degrees), i.e. x is clamped below
  at the fibre's minimum length times 0.1 (1 % of l_o for unpennated muscles);
  this also keeps cos(phi) >= 0.1 and every gradient finite.

Forces (eq. 18): total = F_o (a f_v f_a + f_p) cos(phi); the active part
F_o a f_v f_a cos(phi) is what OpenSim's static optimisation reports. With a rigid
tendon the fibre length and velocity follow from the pose and its rate alone, so at a
given sample the force is affine in activation, F = A a + P (``forces_from_gains``;
``train.physics_targets`` computes A and P once per training sample).
Joint torques (eq. 17): tau = R^T F (``generalized_forces``) with R = -dl_mt/dq from the
subject's path polynomials, and v_mt = -R q_dot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

ARRAY_FIELDS = (
    "max_isometric_force",
    "optimal_fiber_length",
    "tendon_slack_length",
    "pennation_at_optimal",
    "max_contraction_velocity",
    "path_exponents",
    "path_coefficients",
)


@dataclass(frozen=True)
class ThelenConstants:
    """Shape constants of the Thelen 2003 curves (dimensionless)."""

    active_shape: float = 0.5  # KshapeActive: variance-like width of f_a
    passive_shape: float = 4.0  # KshapePassive: exponential shape of f_p
    passive_strain: float = 0.6  # FmaxMuscleStrain: fibre strain where f_p = 1
    af: float = 0.3  # Af: curvature of the shortening branch of f_v
    flen: float = 1.8  # Flen: asymptotic lengthening force / isometric force
    extrapolation_threshold: float = 0.95  # f_v / Flen where the linear continuation starts
    max_pennation: float = math.acos(0.1)  # rad, MuscleFixedWidthPennationModel's cap

    def eccentric_knee(self) -> tuple[float, float, float]:
        """(v0, f0, df/dv): where the lengthening branch turns linear, and its slope there."""
        k = 2.0 + 2.0 / self.af
        f0 = self.extrapolation_threshold * self.flen
        b = k * (self.flen - f0) / (self.flen - 1.0)
        v0 = (f0 - 1.0) / b
        dv_df = 1.0 / b + (f0 - 1.0) * k / ((self.flen - 1.0) * b * b)
        return v0, f0, 1.0 / dv_df


THELEN_GAIT2392 = ThelenConstants()


class MuscleForces(NamedTuple):
    """Muscle quantities, each (..., M): forces in N along the tendon, length in m, angle in rad."""

    total: Any  # F_o (a f_v f_a + f_p) cos(phi), eq. 18
    active: Any  # F_o a f_v f_a cos(phi), what OpenSim's static optimisation reports
    passive: Any  # F_o f_p cos(phi)
    fiber_length: Any  # l_m
    pennation: Any  # phi


def active_force_length(normalized_length: torch.Tensor, c: ThelenConstants = THELEN_GAIT2392):
    """f_a(l_m / l_o): Gaussian, 1 at the optimal length."""
    return torch.exp(-((normalized_length - 1.0) ** 2) / c.active_shape)


def passive_force_length(normalized_length: torch.Tensor, c: ThelenConstants = THELEN_GAIT2392):
    """f_p(l_m / l_o): 0 at or below the optimal length, 1 at strain FmaxMuscleStrain."""
    strain = torch.clamp(normalized_length - 1.0, min=0.0)
    return torch.expm1(c.passive_shape * strain / c.passive_strain) / math.expm1(c.passive_shape)


def force_velocity(normalized_velocity: torch.Tensor, c: ThelenConstants = THELEN_GAIT2392):
    """f_v(v_m / (v_max l_o)), lengthening positive: 0 at -1, 1 at 0, towards Flen above 0.

    Each branch sees its argument clamped to its own domain, so no branch
    divides by zero and gradients stay finite everywhere.
    """
    v = normalized_velocity
    v0, _, slope = c.eccentric_knee()
    shortening = torch.clamp(v, -1.0, 0.0)
    concentric = (1.0 + shortening) / (1.0 - shortening / c.af)
    lengthening = torch.clamp(v, 0.0, v0)
    k = lengthening * (2.0 + 2.0 / c.af)
    eccentric = (k * c.flen + c.flen - 1.0) / (k + c.flen - 1.0)
    eccentric = eccentric + slope * torch.clamp(v - v0, min=0.0)
    return torch.where(v <= 0.0, concentric, eccentric)


def _parameters(arrays: Any, like: torch.Tensor) -> dict[str, torch.Tensor]:
    """Muscle parameters as tensors in ``like``'s dtype and device (no copy when they match)."""
    out = {}
    for name in ARRAY_FIELDS:
        value = getattr(arrays, name)
        dtype = torch.long if name == "path_exponents" else like.dtype
        out[name] = torch.as_tensor(value, dtype=dtype, device=like.device)
    return out


def fiber_kinematics(p: dict[str, torch.Tensor], l_mt, v_mt, c: ThelenConstants = THELEN_GAIT2392):
    """Fibre length (m), cos and angle of pennation, fibre velocity (m/s) (eqs. 19-20)."""
    l_o = p["optimal_fiber_length"]
    phi_o = p["pennation_at_optimal"]
    height = l_o * torch.sin(phi_o)
    pennated = phi_o > 1e-12
    shortest = torch.where(pennated, height / math.sin(c.max_pennation), 0.01 * l_o)
    floor = torch.where(pennated, shortest * math.cos(c.max_pennation), shortest)
    along = torch.maximum(l_mt - p["tendon_slack_length"], floor)
    fiber_length = torch.sqrt(height**2 + along**2)
    cos_pennation = along / fiber_length
    return fiber_length, cos_pennation, torch.atan2(height, along), v_mt * cos_pennation


def muscle_forces(
    arrays: Any, a: Any, l_mt: Any, v_mt: Any, c: ThelenConstants = THELEN_GAIT2392
) -> MuscleForces:
    """Muscle-tendon forces (eq. 18) for activations ``a``, lengths ``l_mt`` (m) and
    lengthening velocities ``v_mt`` (m/s), all (..., M).

    ``arrays``: ``calib.MuscleArrays`` (numpy) or a ``MuscleModel`` (torch buffers).
    Activation is used as given (no clipping: the training loss bounds it).
    numpy in -> numpy out.
    """
    (a, l_mt, v_mt), to_output = _as_tensors(a, l_mt, v_mt)
    p = _parameters(arrays, l_mt)
    fiber_length, cos_pennation, pennation, fiber_velocity = fiber_kinematics(p, l_mt, v_mt, c)
    l_o = p["optimal_fiber_length"]
    normalized_length = fiber_length / l_o
    normalized_velocity = fiber_velocity / (p["max_contraction_velocity"] * l_o)
    along_tendon = p["max_isometric_force"] * cos_pennation
    active = (
        along_tendon
        * a
        * force_velocity(normalized_velocity, c)
        * active_force_length(normalized_length, c)
    )
    passive = along_tendon * passive_force_length(normalized_length, c)
    return MuscleForces(
        *(to_output(x) for x in (active + passive, active, passive, fiber_length, pennation))
    )


def forces_from_gains(
    activation: torch.Tensor, force_gain: torch.Tensor, force_passive: torch.Tensor
) -> torch.Tensor:
    """Muscle-tendon forces (..., M) in N, eq. (18) with a rigid tendon: F = A * a + P.

    ``force_gain`` A = F_o f_v f_a cos(phi) and ``force_passive`` P = F_o f_p cos(phi),
    both (..., M) N, evaluated at the sample's fibre length and velocity.
    """
    return force_gain * activation + force_passive


def generalized_forces(forces: torch.Tensor, moment_arms: torch.Tensor) -> torch.Tensor:
    """Generalised forces (..., C) in N m that muscle forces (..., M) N produce about C
    coordinates, eq. (17): tau = R^T F.

    ``moment_arms`` R is (..., M, C) m, OpenSim's sign (r = -dl/dq).
    """
    return torch.einsum("...mj,...m->...j", moment_arms, forces)


def path_lengths(arrays: Any, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Muscle-tendon lengths (..., M) m and their gradient dl/dq (..., M, J) m/rad at the
    pose q (..., J) rad of the J coordinates of the paths.

    l_mt(q) = sum_p c[m, p] prod_j q_j ** e[p, j]; the moment arms are -dl/dq.
    """
    p = _parameters(arrays, q)
    exponents, coefficients = p["path_exponents"], p["path_coefficients"]
    n_coordinates = exponents.shape[1]
    degree = int(exponents.max()) if exponents.numel() else 0
    each_power = [torch.ones_like(q)]
    for _ in range(degree):
        each_power.append(each_power[-1] * q)
    powers = torch.stack(each_power)  # (degree + 1, ..., J)
    factors = [powers[exponents[:, j], ..., j] for j in range(n_coordinates)]  # each (P, ...)
    basis = torch.stack(factors).prod(dim=0)
    lengths = torch.movedim(basis, 0, -1) @ coefficients.T
    gradient = []
    for j in range(n_coordinates):
        lowered = powers[torch.clamp(exponents[:, j] - 1, min=0), ..., j]
        d_basis = exponents[:, j].to(q.dtype).reshape((-1,) + (1,) * (q.ndim - 1)) * lowered
        for i in range(n_coordinates):
            if i != j:
                d_basis = d_basis * factors[i]
        gradient.append(torch.movedim(d_basis, 0, -1) @ coefficients.T)
    return lengths, torch.stack(gradient, dim=-1)


class MuscleModel(torch.nn.Module):
    """A subject's muscles as torch buffers, built once; ``forward(a, q, qd)`` -> (tau, forces).

    Buffers carry the names of ``calib.MuscleArrays`` (float64; they follow
    ``.to(device)`` and are cast to the input's dtype per call).
    """

    def __init__(self, arrays: Any, constants: ThelenConstants = THELEN_GAIT2392) -> None:
        super().__init__()
        for name in ARRAY_FIELDS:
            value = np.asarray(getattr(arrays, name))
            dtype = np.int64 if name == "path_exponents" else np.float64
            self.register_buffer(name, torch.from_numpy(np.array(value, dtype=dtype)))
        self.constants = constants
        self.n_muscles = int(np.asarray(arrays.max_isometric_force).shape[0])
        self.n_coordinates = int(np.asarray(arrays.path_exponents).shape[1])

    @classmethod
    def from_subject(cls, subject: Any, constants: ThelenConstants = THELEN_GAIT2392):
        return cls(subject.muscle_arrays(), constants)

    def forward(self, a: torch.Tensor, q: torch.Tensor, qd: torch.Tensor):
        return _muscle_torques(self, a, q, qd)


def _muscle_torques(model: MuscleModel, a, q, qd):
    lengths, gradient = path_lengths(model, q)
    v_mt = (gradient @ qd[..., :, None])[..., 0]  # = -R qd
    forces = muscle_forces(model, a, lengths, v_mt, model.constants)
    tau = generalized_forces(forces.total, -gradient)  # R = -dl/dq
    return tau, forces


def muscle_torques(subject_or_model: Any, a: Any, q: Any, qd: Any):
    """Generalised forces (..., J) N m from activations a (..., M) at the pose q (..., J) rad
    of the subject's J coordinates and its rate qd rad/s.

    Returns ``(tau, MuscleForces)``. ``subject_or_model`` is a ``calib.Subject``
    or a prebuilt ``MuscleModel`` (build it once for training). numpy in ->
    numpy out.
    """
    model = (
        subject_or_model
        if isinstance(subject_or_model, MuscleModel)
        else MuscleModel.from_subject(subject_or_model)
    )
    (a, q, qd), to_output = _as_tensors(a, q, qd)
    n_coordinates = model.n_coordinates
    if q.ndim == 0 or q.shape[-1] != n_coordinates:
        raise ValueError(f"q must have shape (..., {n_coordinates}) in rad, got {tuple(q.shape)}")
    if a.ndim == 0 or a.shape[-1] != model.n_muscles:
        raise ValueError(
            f"activations must have shape (..., {model.n_muscles}), one per muscle of the "
            f"subject, got {tuple(a.shape)}"
        )
    tau, forces = _muscle_torques(model, a, q, qd)
    return to_output(tau), MuscleForces(*(to_output(x) for x in forces))


def _as_tensors(*values):
    """Tensors in the first tensor's dtype/device, or float64 from numpy; and the output map."""
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if tensors:
        ref = tensors[0]
        dtype = ref.dtype if ref.is_floating_point() else torch.get_default_dtype()
        converted = [torch.as_tensor(v, dtype=dtype, device=ref.device) for v in values]
        return converted, lambda x: x
    converted = [torch.as_tensor(np.asarray(v, dtype=np.float64)) for v in values]
    return converted, lambda x: x.detach().numpy()
