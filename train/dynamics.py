"""Rigid-body dynamics of the planar thigh-shank-foot chain (paper Section II-D, eqs. 23-32).

Differentiable torch, batched over any leading dimensions, float32 or float64.

Geometry. The world frame has its origin at the hip joint centre, x anterior,
y superior (gravity -y). Each segment k (thigh, shank, foot) is a rigid body
hinged about z at its proximal joint; its centre of mass ``com`` and its
distal joint ``distal_joint`` are the subject's (x, y) vectors from the
proximal joint at OpenSim's default pose (all coordinates 0, pelvis upright).

Sign convention, derived once here. OpenSim's ``hip_flexion``, ``knee_angle``
and ``ankle_angle`` all rotate the distal body about +z (pointing to the
subject's right, out of the sagittal picture seen from the right): hip flexion
swings the knee forward (+x), knee flexion (negative) swings the ankle back,
dorsiflexion (positive) lifts the toes. All three are counter-clockwise
positive in the (x, y) plane, so a segment's absolute orientation is the sum
of the coordinates proximal to it (eq. 27):

    theta_k = base_tilt + sum_{i <= k} q_i,

where ``base_tilt`` is the pelvis's own rotation about +z relative to ground
(OpenSim's ``pelvis_tilt``; 0 = upright). A point fixed in segment k with
default-pose offset ``w`` from its proximal joint sits at R(theta_k) w from
that joint, R the 2-D rotation.

Equations. Writing kinetic energy in the absolute angles theta gives
E = 1/2 theta_dot^T D(theta) theta_dot (eq. 26) with

    D_ab = A_ab cos(theta_b - theta_a) + B_ab sin(theta_b - theta_a),

A, B constants of the subject (A symmetric, B antisymmetric). With the
constant map theta = L q (L lower-triangular ones, eq. 27) the mass matrix is
M = L^T D L (eq. 25), the Christoffel-symbol Coriolis matrix (eqs. 28-29)
is C = L^T C_theta L with C_theta_ab = dD_ab/d(theta_b - theta_a) * theta_dot_b, and
the gravity vector (eq. 30) is G = L^T dV/dtheta. ``dM/dt - 2C`` is then
skew-symmetric, which the tests check.

Base motion (optional). With the pelvis tilting and the hip centre
accelerating (large in running), the joint torques are the hip, knee and ankle
rows of the 4-DOF system (base rotation + three joints): the base rotation
adds to every theta, and in the hip-attached frame the hip centre's
translational acceleration a acts like extra gravity, an inertial load -m a
at every centre of mass, so the effective field is (-a_x, -g - a_y).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from calib.coordinates import JOINT_NAMES, SEGMENT_NAMES

GRAVITY = 9.80665
"""Standard gravity (m/s^2), acting along -y."""

SEGMENTS = SEGMENT_NAMES
POINTS = (*JOINT_NAMES, "mtp")
"""The chain's landmark points returned by ``joint_positions``: the three joint
centres and the foot's distal joint (the metatarsophalangeal joint, "toe")."""


@dataclass(frozen=True)
class BaseMotion:
    """Motion of the chain's base (pelvis) in the sagittal plane.

    ``tilt`` (...,) rad: the pelvis's rotation about +z relative to ground
    (OpenSim ``pelvis_tilt``, 0 upright); ``tilt_rate`` (...,) rad/s;
    ``tilt_acceleration`` (...,) rad/s^2; ``hip_acceleration`` (..., 2) m/s^2,
    the hip joint centre's linear acceleration (x, y) in the world frame.
    numpy arrays, torch tensors or floats; they broadcast with q.
    """

    tilt: Any
    tilt_rate: Any
    tilt_acceleration: Any
    hip_acceleration: Any


class LegChain(torch.nn.Module):
    """The subject's chain constants, built once (buffers; follow ``.to(device)``).

    Build it once per subject and pass it wherever a ``subject`` is accepted, so
    a training loop does not rebuild the constants at every step.
    """

    distal: torch.Tensor
    com: torch.Tensor
    mass: torch.Tensor
    inertia: torch.Tensor
    cos_coefficients: torch.Tensor
    sin_coefficients: torch.Tensor
    first_moments: torch.Tensor
    cumulative: torch.Tensor

    def __init__(
        self,
        mass: Any,
        inertia: Any,
        com: Any,
        distal: Any,
    ) -> None:
        """``mass`` (3,) kg, ``inertia`` (3,) kg m^2 about the COM, ``com`` and
        ``distal`` (3, 2) m from the proximal joint at the default pose, for
        thigh, shank, foot in that order."""
        super().__init__()
        mass = np.asarray(mass, dtype=np.float64).reshape(3)
        inertia = np.asarray(inertia, dtype=np.float64).reshape(3)
        com = np.asarray(com, dtype=np.float64).reshape(3, 2)
        distal = np.asarray(distal, dtype=np.float64).reshape(3, 2)
        if not (np.all(np.isfinite(mass)) and np.all(mass > 0)):
            raise ValueError(f"segment masses must be positive finite kg, got {mass.tolist()}")
        if not (np.all(np.isfinite(inertia)) and np.all(inertia > 0)):
            raise ValueError(
                f"segment inertias must be positive finite kg*m^2, got {inertia.tolist()}"
            )
        if not (np.all(np.isfinite(com)) and np.all(np.isfinite(distal))):
            raise ValueError("segment com and distal_joint vectors must be finite (m)")

        # lever[k, a]: vector from joint a to a point of segment k whose velocity
        # theta_dot_a contributes: the distal joint of a for k > a, COM of k for k == a.
        lever = np.zeros((3, 3, 2))
        for k in range(3):
            for a in range(k):
                lever[k, a] = distal[a]
            lever[k, k] = com[k]
        dot = np.einsum("k,kax,kbx->ab", mass, lever, lever)
        cross = np.einsum(
            "k,kab->ab",
            mass,
            lever[:, :, None, 0] * lever[:, None, :, 1]
            - lever[:, :, None, 1] * lever[:, None, :, 0],
        )
        self.register_buffer("mass", torch.from_numpy(mass))
        self.register_buffer("inertia", torch.from_numpy(inertia))
        self.register_buffer("com", torch.from_numpy(com))
        self.register_buffer("distal", torch.from_numpy(distal))
        self.register_buffer("cos_coefficients", torch.from_numpy(dot + np.diag(inertia)))
        self.register_buffer("sin_coefficients", torch.from_numpy(-cross))
        self.register_buffer("first_moments", torch.from_numpy(np.einsum("k,kax->ax", mass, lever)))
        self.register_buffer("cumulative", torch.tril(torch.ones(3, 3, dtype=torch.float64)))

    @classmethod
    def from_subject(cls, subject: Any) -> LegChain:
        """The sagittal projection of a ``calib.Subject``'s thigh, shank and foot: inertia
        about z and the (x, y) of each centre of mass and distal joint."""
        segments = [subject.segments[name] for name in SEGMENTS]
        return cls(
            mass=[s.mass for s in segments],
            inertia=[np.asarray(s.inertia, dtype=np.float64)[2, 2] for s in segments],
            com=[tuple(s.com)[:2] for s in segments],
            distal=[tuple(s.distal_joint)[:2] for s in segments],
        )

    def constants(self, like: torch.Tensor) -> dict[str, torch.Tensor]:
        """The buffers in ``like``'s dtype and device."""
        return {
            name: buffer.to(dtype=like.dtype, device=like.device)
            for name, buffer in self.named_buffers()
        }


def as_chain(subject: Any) -> LegChain:
    """A ``LegChain`` from a subject, or the chain itself."""
    return subject if isinstance(subject, LegChain) else LegChain.from_subject(subject)


def _torch_io(function):
    """numpy (or float) in -> numpy out; torch in -> torch out, in the first tensor's dtype."""

    @functools.wraps(function)
    def wrapper(subject, *args, **kwargs):
        values = []
        for v in list(args) + list(kwargs.values()):
            if isinstance(v, BaseMotion):
                values += [v.tilt, v.tilt_rate, v.tilt_acceleration, v.hip_acceleration]
            else:
                values.append(v)
        tensors = [v for v in values if isinstance(v, torch.Tensor)]
        if tensors:
            ref = tensors[0]
            dtype = ref.dtype if ref.is_floating_point() else torch.get_default_dtype()
            device = ref.device
        else:
            dtype, device = torch.float64, torch.device("cpu")

        def convert(v):
            if v is None:
                return None
            if isinstance(v, BaseMotion):
                fields = (v.tilt, v.tilt_rate, v.tilt_acceleration, v.hip_acceleration)
                return BaseMotion(*(convert(x) for x in fields))
            return torch.as_tensor(v, dtype=dtype, device=device)

        out = function(
            as_chain(subject),
            *(convert(a) for a in args),
            **{k: convert(v) for k, v in kwargs.items()},
        )
        if tensors:
            return out
        return out.detach().numpy()

    return wrapper


def _check_last(x: torch.Tensor, size: int, name: str, unit: str) -> None:
    if x.ndim == 0 or x.shape[-1] != size:
        raise ValueError(f"{name} must have shape (..., {size}) in {unit}, got {tuple(x.shape)}")


def _absolute_angles(chain_c: dict, q: torch.Tensor, tilt: torch.Tensor | None) -> torch.Tensor:
    theta = q @ chain_c["cumulative"].T  # eq. (27)
    if tilt is not None:
        theta = theta + tilt[..., None]
    return theta


def _rotate(theta: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """R(theta) w for theta (..., n) and w (n, 2) -> (..., n, 2)."""
    c, s = torch.cos(theta), torch.sin(theta)
    return torch.stack((c * w[:, 0] - s * w[:, 1], s * w[:, 0] + c * w[:, 1]), dim=-1)


def _points(chain_c: dict, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Joint landmarks (..., 4, 2) and segment COMs (..., 3, 2), world frame, from the hip."""
    segment_vectors = _rotate(theta, chain_c["distal"])
    origin = torch.zeros_like(segment_vectors[..., :1, :])
    landmarks = torch.cat((origin, torch.cumsum(segment_vectors, dim=-2)), dim=-2)
    coms = landmarks[..., :3, :] + _rotate(theta, chain_c["com"])
    return landmarks, coms


@_torch_io
def joint_positions(subject: Any, q: Any, base_tilt: Any = None) -> Any:
    """Hip, knee, ankle and mtp joint centres (..., 4, 2) in m, world frame, hip at the origin.

    ``q`` (..., 3) rad (hip_flexion, knee_angle, ankle_angle); ``base_tilt``
    (...,) rad the pelvis tilt (None = upright).
    """
    _check_last(q, 3, "q", "rad")
    c = subject.constants(q)
    return _points(c, _absolute_angles(c, q, base_tilt))[0]


@_torch_io
def segment_com_positions(subject: Any, q: Any, base_tilt: Any = None) -> Any:
    """Centres of mass of thigh, shank, foot (..., 3, 2) in m, world frame, from the hip."""
    _check_last(q, 3, "q", "rad")
    c = subject.constants(q)
    return _points(c, _absolute_angles(c, q, base_tilt))[1]


def _absolute_inertia(c: dict, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """D(theta) and its derivative E = dD_ab/d(theta_b - theta_a), both (..., 3, 3)."""
    phi = theta[..., None, :] - theta[..., :, None]  # phi_ab = theta_b - theta_a
    cos_phi, sin_phi = torch.cos(phi), torch.sin(phi)
    a, b = c["cos_coefficients"], c["sin_coefficients"]
    return a * cos_phi + b * sin_phi, b * cos_phi - a * sin_phi


def _gravity_absolute(c: dict, theta: torch.Tensor, field_x, field_y) -> torch.Tensor:
    """dV/dtheta (..., 3) for V = sum_k m_k (field . p_k), field = (a_x, g + a_y)."""
    w = c["first_moments"]
    cos_t, sin_t = torch.cos(theta), torch.sin(theta)
    # d/dtheta of R(theta) w = (-sin w_x - cos w_y, cos w_x - sin w_y)
    dx = -sin_t * w[:, 0] - cos_t * w[:, 1]
    dy = cos_t * w[:, 0] - sin_t * w[:, 1]
    return field_x[..., None] * dx + field_y[..., None] * dy


@_torch_io
def mass_matrix(subject: Any, q: Any) -> Any:
    """M(q) (..., 3, 3) in kg m^2 (eqs. 25-27)."""
    _check_last(q, 3, "q", "rad")
    c = subject.constants(q)
    d, _ = _absolute_inertia(c, _absolute_angles(c, q, None))
    lower = c["cumulative"]
    return lower.T @ d @ lower


@_torch_io
def coriolis_matrix(subject: Any, q: Any, qd: Any) -> Any:
    """C(q, qd) (..., 3, 3) in kg m^2/s from the Christoffel symbols (eqs. 28-29)."""
    _check_last(q, 3, "q", "rad")
    _check_last(qd, 3, "qd", "rad/s")
    c = subject.constants(q)
    _, e = _absolute_inertia(c, _absolute_angles(c, q, None))
    lower = c["cumulative"]
    theta_dot = qd @ lower.T
    return lower.T @ (e * theta_dot[..., None, :]) @ lower


@_torch_io
def gravity_torques(subject: Any, q: Any) -> Any:
    """G(q) (..., 3) in N m (eq. 30): the gradient of potential energy, gravity -y."""
    _check_last(q, 3, "q", "rad")
    c = subject.constants(q)
    theta = _absolute_angles(c, q, None)
    zero = torch.zeros_like(q[..., 0])
    return _gravity_absolute(c, theta, zero, zero + GRAVITY) @ c["cumulative"]


@_torch_io
def inverse_dynamics(
    subject: Any, q: Any, qd: Any, qdd: Any, base: BaseMotion | None = None
) -> Any:
    """Joint torques (..., 3) in N m about hip_flexion, knee_angle, ankle_angle (eq. 24, swing).

    tau = M(q) qdd + C(q, qd) qd + G(q): the torques the muscles (and any external
    load, see ``grf_torques``) must supply. ``q`` rad, ``qd`` rad/s, ``qdd``
    rad/s^2, all (..., 3) in OpenSim coordinates. Without ``base`` the hip is
    fixed and the pelvis upright; with a ``BaseMotion`` the torques are the
    joint rows of the 4-DOF (base rotation + joints) equations with the hip's
    translational acceleration as an inertial load.
    """
    _check_last(q, 3, "q", "rad")
    _check_last(qd, 3, "qd", "rad/s")
    _check_last(qdd, 3, "qdd", "rad/s^2")
    c = subject.constants(q)
    lower = c["cumulative"]
    theta_dot = qd @ lower.T
    theta_ddot = qdd @ lower.T
    zero = torch.zeros_like((q + qd + qdd)[..., 0])
    field_x, field_y = zero, zero + GRAVITY
    tilt = None
    if base is not None:
        _check_last(base.hip_acceleration, 2, "base.hip_acceleration", "m/s^2")
        tilt = base.tilt
        theta_dot = theta_dot + base.tilt_rate[..., None]
        theta_ddot = theta_ddot + base.tilt_acceleration[..., None]
        field_x = field_x + base.hip_acceleration[..., 0]
        field_y = field_y + base.hip_acceleration[..., 1]
    theta = _absolute_angles(c, q, tilt)
    d, e = _absolute_inertia(c, theta)
    inertial = (d @ theta_ddot[..., None])[..., 0]
    velocity = (e @ (theta_dot**2)[..., None])[..., 0]  # C_theta theta_dot (eq. 28)
    gravity = _gravity_absolute(c, theta, field_x, field_y)
    return (inertial + velocity + gravity) @ lower


@_torch_io
def grf_torques(subject: Any, q: Any, force: Any, cop: Any, base_tilt: Any = None) -> Any:
    """Joint torques (..., 3) in N m of a ground reaction force (eq. 32, J_v^T F).

    ``force`` (..., 2) N and ``cop`` (..., 2) m, the centre of pressure relative
    to the hip joint centre, both in the world frame (x anterior, y up); the COP
    is taken as a point of the foot, so every joint feels the force:
    tau_i = ((cop - p_i) x F)_z with p_i the joint centres of ``joint_positions``.
    """
    _check_last(q, 3, "q", "rad")
    _check_last(force, 2, "force", "N")
    _check_last(cop, 2, "cop", "m")
    c = subject.constants(q)
    joints = _points(c, _absolute_angles(c, q, base_tilt))[0][..., :3, :]
    lever = cop[..., None, :] - joints
    return lever[..., 0] * force[..., None, 1] - lever[..., 1] * force[..., None, 0]
