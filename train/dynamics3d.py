"""Three-dimensional inverse dynamics of the leg below the pelvis (thigh, shank, foot).

The model (OpenSim's gait2392 leg without its knee translation):
- the pelvis is a moving base with its six measured coordinates
  (``pelvis_tilt``, ``pelvis_list``, ``pelvis_rotation`` rotate about the
  pelvis's z, x', y'' in that intrinsic order; ``pelvis_tx/ty/tz`` place its
  origin in ground);
- the hip is a ball joint parametrised like OpenSim's hip CustomJoint: flexion
  about z, adduction about x', rotation about y'' (intrinsic), about the hip
  centre fixed in the pelvis;
- knee and ankle are hinges about the subject's axes (the knee's rolling
  translation of gait2392 is left out of the chain, kept in the muscle paths);
- the foot (talus, calcaneus and toes) is one rigid body, subtalar and mtp at 0;
- the foot carries the measured ground reaction: a force at the centre of
  pressure and a free moment.

Frames. Every constant of the subject is expressed in ground axes at the
model's default pose (all coordinates 0): x anterior, y superior, z to the
right, which in gait2392 is also every leg body's own frame. A joint's
rotation is the product of rotations about its axes, each axis fixed in the
frame the previous rotations left (``rotation_sequence``).

Method: recursive Newton-Euler. The forward pass carries orientation,
angular velocity and angular acceleration from the pelvis down and the
joint centres' and centres of mass's accelerations with them; the backward
pass takes the foot's Newton and Euler equations with the ground reaction,
then the shank's and the thigh's, each with the reaction of the segment below.
A coordinate's generalised force is the moment its joint transmits to the
child segment projected on the coordinate's axis in ground, which is what
OpenSim's inverse dynamics reports (OpenSim's sign: positive along the
coordinate's positive rotation), and what the muscles must supply with
tau = R^T F, R = -dl/dq.

numpy float64, vectorised over any leading sample axes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from calib.coordinates import JOINT_NAMES, SEGMENT_NAMES

GRAVITY = np.array([0.0, -9.80665, 0.0])
"""Gravitational acceleration in ground (m/s^2), standard gravity along -y."""

PELVIS_COORDINATES = (
    "pelvis_tilt",
    "pelvis_list",
    "pelvis_rotation",
    "pelvis_tx",
    "pelvis_ty",
    "pelvis_tz",
)
PELVIS_AXES = np.eye(3)[[2, 0, 1]]
"""Rotation axes of pelvis_tilt, pelvis_list, pelvis_rotation (z, x', y'')."""


@dataclass(frozen=True)
class LegModel:
    """The constants of one leg, in ground axes at the default pose (SI units).

    ``hip_centre`` (3,) m in the pelvis frame; per segment (thigh, shank, foot):
    ``mass`` (3,) kg, ``inertia`` (3, 3, 3) kg m^2 about each centre of mass,
    ``com`` (3, 3) and ``distal`` (3, 3) m from the segment's proximal joint
    centre; ``axes``: per joint (hip, knee, ankle) the unit rotation axes of its
    coordinates in the parent segment's frame, in coordinate order.
    """

    hip_centre: np.ndarray
    mass: np.ndarray
    inertia: np.ndarray
    com: np.ndarray
    distal: np.ndarray
    axes: tuple[np.ndarray, np.ndarray, np.ndarray]

    def __post_init__(self) -> None:
        checks = {
            "hip_centre": (self.hip_centre, (3,)),
            "mass": (self.mass, (3,)),
            "inertia": (self.inertia, (3, 3, 3)),
            "com": (self.com, (3, 3)),
            "distal": (self.distal, (3, 3)),
        }
        for name, (value, shape) in checks.items():
            value = np.asarray(value, dtype=np.float64)
            if value.shape != shape or not np.all(np.isfinite(value)):
                raise ValueError(f"LegModel.{name} must be finite with shape {shape}")
            object.__setattr__(self, name, value)
        if not np.all(self.mass > 0):
            raise ValueError(f"LegModel.mass must be positive kg, got {self.mass.tolist()}")
        axes = tuple(np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in self.axes)
        if len(axes) != 3 or any(a.shape[1] != 3 for a in axes):
            raise ValueError("LegModel.axes needs one (n, 3) array of unit axes per joint")
        for joint, a in zip(JOINT_NAMES, axes):
            if not np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-9):
                raise ValueError(f"LegModel.axes of the {joint} must be unit vectors")
        object.__setattr__(self, "axes", axes)

    @property
    def n_coordinates(self) -> int:
        return sum(a.shape[0] for a in self.axes)

    @classmethod
    def from_subject(cls, subject: Any) -> LegModel:
        """The leg of a five-coordinate ``calib.Subject``."""
        segments = [subject.segments[name] for name in SEGMENT_NAMES]
        hip_axes, knee_axes, ankle_axes = (
            np.asarray(subject.joints[j].axes, dtype=np.float64) for j in JOINT_NAMES
        )
        return cls(
            hip_centre=np.asarray(subject.hip_centre, dtype=np.float64),
            mass=np.array([s.mass for s in segments]),
            inertia=np.array([s.inertia for s in segments], dtype=np.float64),
            com=np.array([s.com for s in segments], dtype=np.float64),
            distal=np.array([s.distal_joint for s in segments], dtype=np.float64),
            axes=(hip_axes, knee_axes, ankle_axes),
        )


@dataclass(frozen=True)
class GroundReaction:
    """The ground's load on the foot, in ground: ``force`` (..., 3) N applied at
    ``cop`` (..., 3) m, plus the ``free_moment`` (..., 3) N m (a couple)."""

    force: np.ndarray
    cop: np.ndarray
    free_moment: np.ndarray


@dataclass(frozen=True)
class LegKinematics:
    """The forward pass: per segment (thigh, shank, foot, axis -2) ``orientation``
    (..., 3, 3, 3) ground <- segment, ``angular_velocity`` and ``angular_acceleration``
    (..., 3, 3) rad/s, rad/s^2, ``joint_centre`` (..., 4, 3) m of hip, knee, ankle and
    the foot's distal joint, ``com`` and ``com_acceleration`` (..., 3, 3) m, m/s^2;
    ``partial_axes`` (..., 5, 3): each coordinate's rotation axis in ground."""

    orientation: np.ndarray
    angular_velocity: np.ndarray
    angular_acceleration: np.ndarray
    joint_centre: np.ndarray
    joint_acceleration: np.ndarray
    com: np.ndarray
    com_acceleration: np.ndarray
    partial_axes: np.ndarray


def axis_rotation(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) by ``angle`` (...) rad about the unit ``axis`` (3,)
    (Rodrigues' formula)."""
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    angle = np.asarray(angle, dtype=np.float64)[..., None, None]
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


def rotation_sequence(
    axes: np.ndarray,
    q: np.ndarray,
    qd: np.ndarray,
    qdd: np.ndarray,
    orientation: np.ndarray,
    angular_velocity: np.ndarray,
    angular_acceleration: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A joint of successive rotations about ``axes`` (n, 3), each fixed in the frame
    the previous ones left, below a parent with the given orientation (..., 3, 3),
    angular velocity and acceleration (..., 3) in ground.

    ``q``, ``qd``, ``qdd`` (..., n) rad, rad/s, rad/s^2. Returns the child's
    orientation, angular velocity, angular acceleration and the partial axes
    (..., n, 3): the i-th axis in ground, u_i = R_{i-1} a_i, with
    omega_i = omega_{i-1} + u_i qd_i and
    alpha_i = alpha_{i-1} + u_i qdd_i + omega_{i-1} x u_i qd_i (u_i is fixed in frame i-1).
    """
    partial = []
    for i, axis in enumerate(axes):
        u = orientation @ axis
        partial.append(u)
        angular_acceleration = (
            angular_acceleration
            + u * qdd[..., i, None]
            + np.cross(angular_velocity, u) * qd[..., i, None]
        )
        angular_velocity = angular_velocity + u * qd[..., i, None]
        orientation = orientation @ axis_rotation(axis, q[..., i])
    return orientation, angular_velocity, angular_acceleration, np.stack(partial, axis=-2)


def _point_acceleration(base_acceleration, angular_velocity, angular_acceleration, offset):
    """Acceleration of a point at ``offset`` (ground axes) from a point of the same body."""
    return (
        base_acceleration
        + np.cross(angular_acceleration, offset)
        + np.cross(angular_velocity, np.cross(angular_velocity, offset))
    )


def leg_kinematics(
    model: LegModel,
    pelvis_q: np.ndarray,
    pelvis_qd: np.ndarray,
    pelvis_qdd: np.ndarray,
    q: np.ndarray,
    qd: np.ndarray,
    qdd: np.ndarray,
) -> LegKinematics:
    """The forward pass from the pelvis (..., 6) and leg (..., 5) coordinates and
    their first and second time derivatives (rad or m, per s, per s^2)."""
    q, qd, qdd = (np.asarray(x, dtype=np.float64) for x in (q, qd, qdd))
    pelvis_q, pelvis_qd, pelvis_qdd = (
        np.asarray(x, dtype=np.float64) for x in (pelvis_q, pelvis_qd, pelvis_qdd)
    )
    n = model.n_coordinates
    for name, x, size in (
        ("q", q, n), ("qd", qd, n), ("qdd", qdd, n),
        ("pelvis_q", pelvis_q, 6), ("pelvis_qd", pelvis_qd, 6), ("pelvis_qdd", pelvis_qdd, 6),
    ):  # fmt: skip
        if x.ndim == 0 or x.shape[-1] != size:
            raise ValueError(f"{name} must have shape (..., {size}), got {x.shape}")
    batch = np.broadcast_shapes(q.shape[:-1], pelvis_q.shape[:-1])
    zero = np.zeros((*batch, 3))
    orientation, omega, alpha, _ = rotation_sequence(
        PELVIS_AXES,
        pelvis_q[..., :3], pelvis_qd[..., :3], pelvis_qdd[..., :3],
        np.broadcast_to(np.eye(3), (*batch, 3, 3)), zero, zero,
    )  # fmt: skip
    # The pelvis's translations are along ground's axes (OpenSim's ground_pelvis joint).
    hip_offset = orientation @ model.hip_centre
    centre = pelvis_q[..., 3:] + hip_offset
    centre_acceleration = _point_acceleration(pelvis_qdd[..., 3:], omega, alpha, hip_offset)

    orientations, omegas, alphas, partials = [], [], [], []
    centres, centre_accelerations, coms, com_accelerations = [centre], [centre_acceleration], [], []
    first = 0
    for k, axes in enumerate(model.axes):
        index = slice(first, first + axes.shape[0])
        first += axes.shape[0]
        orientation, omega, alpha, partial = rotation_sequence(
            axes, q[..., index], qd[..., index], qdd[..., index], orientation, omega, alpha
        )
        com_offset = orientation @ model.com[k]
        distal_offset = orientation @ model.distal[k]
        coms.append(centre + com_offset)
        com_accelerations.append(_point_acceleration(centre_acceleration, omega, alpha, com_offset))
        centre_acceleration = _point_acceleration(centre_acceleration, omega, alpha, distal_offset)
        centre = centre + distal_offset
        centres.append(centre)
        centre_accelerations.append(centre_acceleration)
        orientations.append(orientation)
        omegas.append(omega)
        alphas.append(alpha)
        partials.append(partial)
    return LegKinematics(
        orientation=np.stack(orientations, axis=-3),
        angular_velocity=np.stack(omegas, axis=-2),
        angular_acceleration=np.stack(alphas, axis=-2),
        joint_centre=np.stack(centres, axis=-2),
        joint_acceleration=np.stack(centre_accelerations, axis=-2),
        com=np.stack(coms, axis=-2),
        com_acceleration=np.stack(com_accelerations, axis=-2),
        partial_axes=np.concatenate(partials, axis=-2),
    )


@dataclass(frozen=True)
class JointLoads:
    """What each joint (hip, knee, ankle) transmits from the parent to the child
    segment: ``force`` (..., 3, 3) N and ``moment`` (..., 3, 3) N m about the joint
    centre, in ground; ``generalized_force`` (..., 5) N m per coordinate."""

    force: np.ndarray
    moment: np.ndarray
    generalized_force: np.ndarray


def joint_loads(
    model: LegModel, kinematics: LegKinematics, ground: GroundReaction | None
) -> JointLoads:
    """The backward pass: Newton's and Euler's equations from the foot up.

    Segment k with mass m, inertia I (ground axes: R I_k R^T), centre of mass c,
    proximal joint p, distal joint d, loaded by the parent's force F_p and moment
    M_p at p and the child's reaction -F_d, -M_d at d:
        F_p = m (a_c - g) + F_d                                   (Newton)
        M_p = I alpha + omega x I omega - (p - c) x F_p + (d - c) x F_d + M_d   (Euler, about c)
    The foot's 'child' is the ground reaction with the opposite sign
    (F_d = -F_grf applied at the COP, M_d = -free moment).
    """
    orientation = kinematics.orientation
    batch = orientation.shape[:-3]
    if ground is None:
        child_force = np.zeros((*batch, 3))
        child_moment = np.zeros((*batch, 3))
        child_point = kinematics.joint_centre[..., 3, :]
    else:
        child_force = -np.broadcast_to(np.asarray(ground.force, dtype=np.float64), (*batch, 3))
        child_moment = -np.broadcast_to(
            np.asarray(ground.free_moment, dtype=np.float64), (*batch, 3)
        )
        child_point = np.broadcast_to(np.asarray(ground.cop, dtype=np.float64), (*batch, 3))
    forces: list[np.ndarray] = []  # distal first
    moments: list[np.ndarray] = []
    for k in (2, 1, 0):
        rotation = orientation[..., k, :, :]
        inertia = rotation @ model.inertia[k] @ np.swapaxes(rotation, -1, -2)
        omega = kinematics.angular_velocity[..., k, :]
        alpha = kinematics.angular_acceleration[..., k, :]
        com = kinematics.com[..., k, :]
        proximal = kinematics.joint_centre[..., k, :]
        force = model.mass[k] * (kinematics.com_acceleration[..., k, :] - GRAVITY) + child_force
        spin = (inertia @ alpha[..., None])[..., 0] + np.cross(
            omega, (inertia @ omega[..., None])[..., 0]
        )
        moment = (
            spin
            - np.cross(proximal - com, force)
            + np.cross(child_point - com, child_force)
            + child_moment
        )
        forces.append(force)
        moments.append(moment)
        child_force, child_moment, child_point = force, moment, proximal
    force = np.stack(forces[::-1], axis=-2)
    moment = np.stack(moments[::-1], axis=-2)
    joint_of = np.repeat(np.arange(3), [a.shape[0] for a in model.axes])
    generalized = np.einsum("...ci,...ci->...c", moment[..., joint_of, :], kinematics.partial_axes)
    return JointLoads(force=force, moment=moment, generalized_force=generalized)


def inverse_dynamics(
    model: LegModel,
    pelvis_q: np.ndarray,
    pelvis_qd: np.ndarray,
    pelvis_qdd: np.ndarray,
    q: np.ndarray,
    qd: np.ndarray,
    qdd: np.ndarray,
    ground: GroundReaction | None = None,
) -> np.ndarray:
    """Generalised forces (..., 5) in N m of the leg's coordinates (hip flexion,
    adduction, rotation, knee, ankle): the moments the muscles (and passive
    structures) must supply for the motion under gravity and the ground reaction.

    ``pelvis_q`` (..., 6): pelvis_tilt, pelvis_list, pelvis_rotation (rad),
    pelvis_tx, pelvis_ty, pelvis_tz (m); ``q`` (..., 5) rad; their derivatives
    per s and per s^2. A pelvis held still (its measured pose, zero rates) is
    ``pelvis_qd = pelvis_qdd = 0``.
    """
    kinematics = leg_kinematics(model, pelvis_q, pelvis_qd, pelvis_qdd, q, qd, qdd)
    return joint_loads(model, kinematics, ground).generalized_force
