"""The three-dimensional leg inverse dynamics against independent formulations.

- Lagrange's equations by automatic differentiation (torch.func) of the
  leg's kinetic and potential energy in the 11 generalised coordinates
  (pelvis 6 + leg 5), with the ground reaction's generalised force from the
  virtual work of a point fixed in the foot: the recursive Newton-Euler pass
  must give the same five generalised forces.
- The planar chain of train.dynamics for a planar motion of a leg with
  hinges about z.
- Textbook statics: a horizontal leg held against gravity.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.func import jacrev, jvp

from train import dynamics as planar
from train.dynamics3d import (
    GRAVITY,
    GroundReaction,
    LegModel,
    axis_rotation,
    inverse_dynamics,
    joint_loads,
    leg_kinematics,
)


def _random_inertia(rng: np.random.Generator, scale: float) -> np.ndarray:
    """A physical inertia tensor (principal moments obeying the triangle inequality)."""
    moments = scale * rng.uniform(0.5, 1.0, 3)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return rotation @ np.diag(moments) @ rotation.T


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def random_leg(seed: int = 0) -> LegModel:
    """A leg with off-axis centres of mass, full inertia tensors and an oblique ankle."""
    rng = np.random.default_rng(seed)
    return LegModel(
        hip_centre=np.array([-0.07, -0.07, 0.085]),
        mass=np.array([9.0, 3.6, 1.5]),
        inertia=np.array([_random_inertia(rng, s) for s in (0.17, 0.05, 0.009)]),
        com=np.array([[0.01, -0.19, 0.01], [-0.005, -0.18, 0.004], [0.06, -0.02, 0.006]]),
        distal=np.array([[-0.005, -0.45, 0.0], [0.0, -0.43, 0.0], [0.13, -0.05, 0.01]]),
        axes=(
            np.eye(3)[[2, 0, 1]],
            _unit([0.02, 0.01, 1.0])[None],
            _unit([-0.105, -0.174, 0.979])[None],
        ),
    )


def _rotation_torch(axis: np.ndarray, angle: torch.Tensor) -> torch.Tensor:
    k = torch.tensor(
        [[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]],
        dtype=torch.float64,
    )
    return (
        torch.eye(3, dtype=torch.float64) + torch.sin(angle) * k + (1 - torch.cos(angle)) * (k @ k)
    )


def _bodies(model: LegModel, coordinates: torch.Tensor):
    """(orientations, coms, ankle) of thigh, shank, foot from the 11 coordinates."""

    def t(a):
        return torch.as_tensor(a, dtype=torch.float64)

    pelvis = (
        _rotation_torch(np.array([0.0, 0.0, 1.0]), coordinates[0])
        @ _rotation_torch(np.array([1.0, 0.0, 0.0]), coordinates[1])
        @ _rotation_torch(np.array([0.0, 1.0, 0.0]), coordinates[2])
    )
    joint = coordinates[3:6] + pelvis @ t(model.hip_centre)
    orientation = pelvis
    leg = coordinates[6:]
    orientations, coms, joints = [], [], [joint]
    first = 0
    for k, axes in enumerate(model.axes):
        for axis in axes:
            orientation = orientation @ _rotation_torch(axis, leg[first])
            first += 1
        orientations.append(orientation)
        coms.append(joint + orientation @ t(model.com[k]))
        joint = joint + orientation @ t(model.distal[k])
        joints.append(joint)
    return orientations, coms, joints


def _angular_velocity(model, coordinates, velocities, k):
    def orientation(c):
        return _bodies(model, c)[0][k]

    rotation, rotation_rate = jvp(orientation, (coordinates,), (velocities,))
    skew = rotation_rate @ rotation.T
    return torch.stack((skew[2, 1], skew[0, 2], skew[1, 0]))


def _lagrangian(model: LegModel, coordinates: torch.Tensor, velocities: torch.Tensor):
    orientations, coms, _ = _bodies(model, coordinates)
    energy = torch.zeros((), dtype=torch.float64)
    for k in range(3):

        def com(c, k=k):
            return _bodies(model, c)[1][k]

        _, velocity = jvp(com, (coordinates,), (velocities,))
        omega = _angular_velocity(model, coordinates, velocities, k)
        inertia = orientations[k] @ torch.as_tensor(model.inertia[k]) @ orientations[k].T
        kinetic = 0.5 * model.mass[k] * velocity @ velocity + 0.5 * omega @ inertia @ omega
        potential = -model.mass[k] * torch.as_tensor(GRAVITY) @ coms[k]
        energy = energy + kinetic - potential
    return energy


def lagrange_generalized_forces(model, coordinates, velocities, accelerations, force, cop, moment):
    """Leg generalised forces (5,) from Lagrange's equations minus the ground's virtual work."""
    c, v, a = (
        torch.as_tensor(x, dtype=torch.float64) for x in (coordinates, velocities, accelerations)
    )
    momentum = jacrev(_lagrangian, argnums=2)
    d_momentum_dq = jacrev(momentum, argnums=1)(model, c, v)
    d_momentum_dv = jacrev(momentum, argnums=2)(model, c, v)
    d_lagrangian_dq = jacrev(_lagrangian, argnums=1)(model, c, v)
    euler_lagrange = d_momentum_dq @ v + d_momentum_dv @ a - d_lagrangian_dq
    # The COP as a point fixed in the foot at this instant; the free moment through the foot's
    # angular velocity's dependence on the generalised velocities.
    orientations, _, joints = _bodies(model, c)
    fixed = orientations[2].T @ (torch.as_tensor(cop) - joints[2])

    def point(q):
        return _bodies(model, q)[2][2] + _bodies(model, q)[0][2] @ fixed

    point_jacobian = jacrev(point)(c)
    omega_jacobian = jacrev(lambda w: _angular_velocity(model, c, w, 2))(v)
    external = point_jacobian.T @ torch.as_tensor(force) + omega_jacobian.T @ torch.as_tensor(
        moment
    )
    return (euler_lagrange - external)[6:].numpy()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_newton_euler_equals_lagrange_with_moving_pelvis_and_ground_reaction(seed):
    rng = np.random.default_rng(10 + seed)
    model = random_leg(seed)
    pelvis_q = np.concatenate([rng.uniform(-0.3, 0.3, 3), rng.uniform(-1, 1, 3)])
    pelvis_qd = rng.normal(0, 1.0, 6)
    pelvis_qdd = rng.normal(0, 5.0, 6)
    q = rng.uniform(-0.6, 0.6, 5)
    qd = rng.normal(0, 3.0, 5)
    qdd = rng.normal(0, 20.0, 5)
    force = np.array([80.0, 700.0, -40.0]) * rng.uniform(0.5, 1.5)
    cop = leg_kinematics(model, pelvis_q, pelvis_qd, pelvis_qdd, q, qd, qdd).joint_centre[2]
    cop = cop + rng.normal(0, 0.05, 3)
    moment = np.array([0.0, rng.normal(0, 5.0), 0.0])
    expected = lagrange_generalized_forces(
        model,
        np.concatenate([pelvis_q, q]),
        np.concatenate([pelvis_qd, qd]),
        np.concatenate([pelvis_qdd, qdd]),
        force,
        cop,
        moment,
    )
    got = inverse_dynamics(
        model, pelvis_q, pelvis_qd, pelvis_qdd, q, qd, qdd, GroundReaction(force, cop, moment)
    )
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


def test_batched_samples_equal_one_at_a_time():
    rng = np.random.default_rng(3)
    model = random_leg(3)
    n = 7
    args = [
        rng.uniform(-0.3, 0.3, (n, 6)),
        rng.normal(0, 1, (n, 6)),
        rng.normal(0, 5, (n, 6)),
        rng.uniform(-0.6, 0.6, (n, 5)),
        rng.normal(0, 3, (n, 5)),
        rng.normal(0, 20, (n, 5)),
    ]
    ground = GroundReaction(
        rng.normal(0, 300, (n, 3)), rng.normal(0, 0.5, (n, 3)), rng.normal(0, 5, (n, 3))
    )
    batched = inverse_dynamics(model, *args, ground)
    for i in range(n):
        single = inverse_dynamics(
            model,
            *(a[i] for a in args),
            GroundReaction(ground.force[i], ground.cop[i], ground.free_moment[i]),
        )
        np.testing.assert_allclose(batched[i], single, rtol=1e-12, atol=1e-12)


def _planar_leg() -> tuple[LegModel, planar.LegChain]:
    """A leg whose joints all turn about z and whose inertias have z as a principal axis."""
    rng = np.random.default_rng(4)
    inertia = []
    for scale in (0.17, 0.05, 0.009):
        block = _random_inertia(rng, scale)
        block[2, :2] = block[:2, 2] = 0.0
        block[2, 2] = scale
        inertia.append(block)
    com = np.array([[0.01, -0.19, 0.02], [-0.005, -0.18, -0.01], [0.06, -0.02, 0.006]])
    distal = np.array([[-0.005, -0.45, 0.0], [0.0, -0.43, 0.0], [0.13, -0.05, 0.0]])
    z = np.array([[0.0, 0.0, 1.0]])
    model = LegModel(
        hip_centre=np.array([-0.07, -0.07, 0.085]),
        mass=np.array([9.0, 3.6, 1.5]),
        inertia=np.array(inertia),
        com=com,
        distal=distal,
        axes=(np.eye(3)[[2, 0, 1]], z, z),
    )
    chain = planar.LegChain(
        mass=model.mass, inertia=[i[2, 2] for i in inertia], com=com[:, :2], distal=distal[:, :2]
    )
    return model, chain


def test_planar_motion_reduces_to_the_planar_chain():
    model, chain = _planar_leg()
    rng = np.random.default_rng(5)
    n = 20
    tilt = rng.uniform(-0.2, 0.2, n)
    tilt_rate, tilt_acceleration = rng.normal(0, 1, n), rng.normal(0, 5, n)
    pelvis_q = np.column_stack(
        [tilt, np.zeros(n), np.zeros(n), rng.normal(0, 1, (n, 2)), np.zeros(n)]
    )
    pelvis_qd = np.column_stack(
        [tilt_rate, np.zeros((n, 2)), rng.normal(0, 1, (n, 2)), np.zeros(n)]
    )
    pelvis_qdd = np.column_stack(
        [tilt_acceleration, np.zeros((n, 2)), rng.normal(0, 5, (n, 2)), np.zeros(n)]
    )
    sagittal = rng.uniform(-0.8, 0.8, (n, 3))
    sagittal_qd, sagittal_qdd = rng.normal(0, 3, (n, 3)), rng.normal(0, 20, (n, 3))

    def five(x):
        return np.column_stack([x[:, 0], np.zeros((n, 2)), x[:, 1:]])

    force = np.column_stack([rng.normal(0, 100, n), rng.uniform(100, 900, n), np.zeros(n)])
    kinematics = leg_kinematics(
        model,
        pelvis_q,
        pelvis_qd,
        pelvis_qdd,
        five(sagittal),
        five(sagittal_qd),
        five(sagittal_qdd),
    )
    cop = kinematics.joint_centre[:, 2] + np.column_stack(
        [rng.normal(0, 0.05, n), rng.normal(-0.05, 0.02, n), np.zeros(n)]
    )
    loads = joint_loads(model, kinematics, GroundReaction(force, cop, np.zeros((n, 3))))
    hip = kinematics.joint_centre[:, 0]
    # The hip centre's acceleration, which the planar chain takes as its base acceleration.
    hip_acceleration = kinematics.joint_acceleration[:, 0, :2]
    base = planar.BaseMotion(tilt, tilt_rate, tilt_acceleration, hip_acceleration)
    expected = planar.inverse_dynamics(chain, sagittal, sagittal_qd, sagittal_qdd, base=base)
    expected = expected - planar.grf_torques(
        chain, sagittal, force[:, :2], (cop - hip)[:, :2], base_tilt=tilt
    )
    np.testing.assert_allclose(
        loads.generalized_force[:, [0, 3, 4]], expected, rtol=1e-9, atol=1e-9
    )


def test_horizontal_leg_held_against_gravity():
    """Hip flexed 90 degrees, knee and ankle straight, at rest: the hip must supply
    +g sum m_k x_k (flexion, lifting the leg), the knee +g sum_{shank, foot} m (x - x_knee)."""
    model = LegModel(
        hip_centre=np.zeros(3),
        mass=np.array([8.0, 3.0, 1.0]),
        inertia=np.array([np.eye(3) * 0.1, np.eye(3) * 0.05, np.eye(3) * 0.01]),
        com=np.array([[0.0, -0.2, 0.0], [0.0, -0.2, 0.0], [0.05, -0.03, 0.0]]),
        distal=np.array([[0.0, -0.45, 0.0], [0.0, -0.43, 0.0], [0.12, -0.05, 0.0]]),
        axes=(np.eye(3)[[2, 0, 1]], np.array([[0.0, 0.0, 1.0]]), np.array([[0.0, 0.0, 1.0]])),
    )
    q = np.array([math.pi / 2, 0.0, 0.0, 0.0, 0.0])
    zero6, zero5 = np.zeros(6), np.zeros(5)
    tau = inverse_dynamics(model, zero6, zero6, zero6, q, zero5, zero5)
    g = -GRAVITY[1]
    # Rotating +90 degrees about z maps (x, y) -> (-y, x): the leg points forward (+x).
    x_com = [0.2, 0.45 + 0.2, 0.45 + 0.43 + 0.03]
    x_knee = 0.45
    assert tau[0] == pytest.approx(g * np.dot(model.mass, x_com), rel=1e-12)
    assert tau[3] == pytest.approx(
        g * (3.0 * (x_com[1] - x_knee) + 1.0 * (x_com[2] - x_knee)), rel=1e-12
    )
    assert tau[0] > 0 and tau[3] > 0
    np.testing.assert_allclose(tau[[1, 2]], 0.0, atol=1e-12)


def test_axis_rotation_is_a_right_handed_rotation():
    quarter = axis_rotation(np.array([0.0, 0.0, 1.0]), math.pi / 2)
    np.testing.assert_allclose(quarter @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-15)


def test_leg_model_refuses_bad_axes():
    model = random_leg()
    with pytest.raises(ValueError, match="knee must be unit"):
        LegModel(
            model.hip_centre,
            model.mass,
            model.inertia,
            model.com,
            model.distal,
            (model.axes[0], np.array([[0.0, 0.0, 2.0]]), model.axes[2]),
        )
