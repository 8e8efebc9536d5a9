"""The chain's dynamics against independent derivations: a wrong sign fails here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.func import hessian, jacrev, jvp

from calib import default_subject
from calib.scaling import generic_subject
from train.dynamics import (
    GRAVITY,
    BaseMotion,
    LegChain,
    coriolis_matrix,
    gravity_torques,
    grf_torques,
    inverse_dynamics,
    joint_positions,
    mass_matrix,
    segment_com_positions,
)

# torch.func.hessian scripts a helper inside torch, which warns on torch 2.13.
pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:DeprecationWarning"
)


@pytest.fixture(scope="module")
def chain() -> LegChain:
    return LegChain.from_subject(default_subject())


def _poses(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    q = rng.uniform([-0.5, -1.8, -0.6], [1.6, 0.0, 0.5], size=(n, 3))
    qd = rng.normal(0.0, 4.0, size=(n, 3))
    qdd = rng.normal(0.0, 40.0, size=(n, 3))
    return tuple(torch.tensor(x, dtype=torch.float64) for x in (q, qd, qdd))


def _energies(chain, q, qd):
    """Kinetic and potential energy from the COM positions alone (eq. 26, eq. 30)."""
    com = segment_com_positions(chain, q)
    com_velocity = jvp(lambda x: segment_com_positions(chain, x), (q,), (qd,))[1]
    spin = torch.cumsum(qd, dim=-1)  # eq. (27)
    kinetic = 0.5 * (chain.mass * (com_velocity**2).sum(-1)).sum(-1) + 0.5 * (
        chain.inertia * spin**2
    ).sum(-1)
    potential = GRAVITY * (chain.mass * com[..., 1]).sum(-1)
    return kinetic, potential


@pytest.mark.slow
def test_mass_matrix_is_symmetric_positive_definite_and_the_hessian_of_kinetic_energy(chain):
    q, qd, _ = _poses(20, 0)
    m = mass_matrix(chain, q)
    torch.testing.assert_close(m, m.transpose(-1, -2), rtol=0, atol=1e-14)
    assert torch.linalg.eigvalsh(m).min() > 0
    for qi, mi in zip(q, m):
        h = hessian(lambda v, at=qi: _energies(chain, at, v)[0])(
            torch.zeros(3, dtype=torch.float64)
        )
        torch.testing.assert_close(mi, h, rtol=1e-12, atol=1e-12)
    kinetic, _ = _energies(chain, q, qd)
    quadratic = 0.5 * torch.einsum("ni,nij,nj->n", qd, m, qd)
    torch.testing.assert_close(quadratic, kinetic, rtol=1e-12, atol=1e-12)


def test_mass_matrix_derivative_minus_twice_coriolis_is_skew_symmetric(chain):
    q, qd, _ = _poses(20, 1)
    m_dot = jvp(lambda x: mass_matrix(chain, x), (q,), (qd,))[1]
    n = m_dot - 2.0 * coriolis_matrix(chain, q, qd)
    assert n.abs().max() > 1e-3  # not trivially zero
    torch.testing.assert_close(n, -n.transpose(-1, -2), rtol=0, atol=1e-12)


def test_gravity_is_the_gradient_of_potential_energy(chain):
    q, _, _ = _poses(20, 2)
    grad = torch.func.vmap(torch.func.grad(lambda x: _energies(chain, x, x * 0)[1]))(q)
    torch.testing.assert_close(gravity_torques(chain, q), grad, rtol=1e-12, atol=1e-12)


def test_inverse_dynamics_equals_the_lagrange_equations_by_autograd(chain):
    q, qd, qdd = _poses(10, 3)
    tau = inverse_dynamics(chain, q, qd, qdd)
    torch.testing.assert_close(
        tau,
        (mass_matrix(chain, q) @ qdd[..., None] + coriolis_matrix(chain, q, qd) @ qd[..., None])[
            ..., 0
        ]
        + gravity_torques(chain, q),
        rtol=1e-12,
        atol=1e-10,
    )
    for i in range(len(q)):
        expected = _lagrange_rows(chain, q[i], qd[i], qdd[i], base=None)
        torch.testing.assert_close(tau[i], expected, rtol=1e-10, atol=1e-9)


def _lagrange_rows(chain, q, qd, qdd, base):
    """Joint rows of d/dt dL/ds_dot - dL/ds for s = (hip x, hip y, tilt, q), by autograd."""
    if base is None:
        s_base = torch.zeros(3, dtype=q.dtype)
        sd_base = torch.zeros(3, dtype=q.dtype)
        sdd_base = torch.zeros(3, dtype=q.dtype)
    else:
        tilt, rate, acc, hip_acc = base
        s_base = torch.tensor([0.0, 0.0, tilt], dtype=q.dtype)
        sd_base = torch.tensor([0.3, -0.2, rate], dtype=q.dtype)
        sdd_base = torch.tensor([hip_acc[0], hip_acc[1], acc], dtype=q.dtype)
    s = torch.cat((s_base, q))
    sd = torch.cat((sd_base, qd))
    sdd = torch.cat((sdd_base, qdd))

    def positions(x):
        return x[:2] + segment_com_positions(chain, x[3:], base_tilt=x[2])

    def kinetic(x, xd):
        v = jvp(positions, (x,), (xd,))[1]
        spin = xd[2] + torch.cumsum(xd[3:], dim=0)
        return 0.5 * (chain.mass * (v**2).sum(-1)).sum() + 0.5 * (chain.inertia * spin**2).sum()

    def potential(x):
        return GRAVITY * (chain.mass * positions(x)[:, 1]).sum()

    h = hessian(kinetic, argnums=1)(s, sd)
    mixed = jacrev(jacrev(kinetic, argnums=1), argnums=0)(s, sd)
    rows = h @ sdd + mixed @ sd - jacrev(kinetic, argnums=0)(s, sd) + jacrev(potential)(s)
    return rows[3:]


def test_base_motion_rows_equal_the_four_dof_lagrange_equations(chain):
    q, qd, qdd = _poses(6, 4)
    rng = np.random.default_rng(5)
    for i in range(len(q)):
        tilt, rate, acc = rng.normal([0.1, 0.0, 0.0], [0.2, 2.0, 30.0])
        hip_acc = rng.normal(0.0, 8.0, size=2)
        base = BaseMotion(
            torch.tensor(tilt), torch.tensor(rate), torch.tensor(acc), torch.tensor(hip_acc)
        )
        tau = inverse_dynamics(chain, q[i], qd[i], qdd[i], base=base)
        expected = _lagrange_rows(chain, q[i], qd[i], qdd[i], base=(tilt, rate, acc, hip_acc))
        torch.testing.assert_close(tau, expected, rtol=1e-10, atol=1e-9)


def test_free_fall_cancels_gravity_and_a_still_base_changes_nothing(chain):
    q, qd, qdd = _poses(8, 6)
    zero = torch.zeros(len(q), dtype=torch.float64)
    still = BaseMotion(zero, zero, zero, torch.zeros(len(q), 2, dtype=torch.float64))
    torch.testing.assert_close(
        inverse_dynamics(chain, q, qd, qdd, base=still), inverse_dynamics(chain, q, qd, qdd)
    )
    falling = BaseMotion(
        zero, zero, zero, torch.tensor([[0.0, -GRAVITY]], dtype=torch.float64).expand(len(q), 2)
    )
    torch.testing.assert_close(
        inverse_dynamics(chain, q, qd, qdd, base=falling),
        inverse_dynamics(chain, q, qd, qdd) - gravity_torques(chain, q),
        rtol=1e-12,
        atol=1e-10,
    )


@pytest.mark.slow
def test_passive_swing_conserves_energy(chain):
    """RK4 of M qdd = -(C qd + G) for 2 s: total energy stays put."""
    q = torch.tensor([0.6, -0.9, 0.2], dtype=torch.float64)
    qd = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    zero = torch.zeros(3, dtype=torch.float64)

    def acceleration(q, qd):
        bias = inverse_dynamics(chain, q, qd, zero)
        return torch.linalg.solve(mass_matrix(chain, q), -bias)

    def energy(q, qd):
        kinetic, potential = _energies(chain, q, qd)
        return float(kinetic + potential)

    start = energy(q, qd)
    dt = 1e-3
    lowest = 0.0
    for _ in range(2000):
        k1q, k1v = qd, acceleration(q, qd)
        k2q, k2v = qd + 0.5 * dt * k1v, acceleration(q + 0.5 * dt * k1q, qd + 0.5 * dt * k1v)
        k3q, k3v = qd + 0.5 * dt * k2v, acceleration(q + 0.5 * dt * k2q, qd + 0.5 * dt * k2v)
        k4q, k4v = qd + dt * k3v, acceleration(q + dt * k3q, qd + dt * k3v)
        q = q + dt / 6 * (k1q + 2 * k2q + 2 * k3q + k4q)
        qd = qd + dt / 6 * (k1v + 2 * k2v + 2 * k3v + k4v)
        lowest = min(lowest, float(q[0]))
    assert lowest < -0.3  # it really swung through the vertical
    assert abs(energy(q, qd) - start) < 1e-7 * abs(start) + 1e-9


def test_grf_torques_equal_virtual_work_of_a_point_on_the_foot(chain):
    q, _, _ = _poses(10, 7)
    rng = np.random.default_rng(8)
    offset = torch.tensor([0.08, -0.05], dtype=torch.float64)  # a sole point, foot frame

    def cop_of(x):
        points = joint_positions(chain, x)
        foot = x.sum()
        c, s = torch.cos(foot), torch.sin(foot)
        return points[2] + torch.stack(
            (c * offset[0] - s * offset[1], s * offset[0] + c * offset[1])
        )

    for qi in q:
        force = torch.tensor(rng.normal([30.0, 700.0], [80.0, 100.0]), dtype=torch.float64)
        tau = grf_torques(chain, qi, force, cop_of(qi))
        step = 1e-6
        for j in range(3):
            dq = torch.zeros(3, dtype=torch.float64)
            dq[j] = step
            work = force @ (cop_of(qi + dq) - cop_of(qi - dq)) / (2 * step)
            assert float(tau[j]) == pytest.approx(float(work), rel=1e-6, abs=1e-6)


def test_horizontal_thigh_pendulum_needs_m_g_x_com_at_the_hip():
    thigh = LegChain(
        mass=[7.0, 1e-12, 1e-12],
        inertia=[0.1, 1e-12, 1e-12],
        com=[(0.0, -0.18), (0.0, 0.0), (0.0, 0.0)],
        distal=[(0.0, -0.4), (0.0, -0.4), (0.1, 0.0)],
    )
    q = np.array([math.pi / 2, 0.0, 0.0])  # thigh flexed to horizontal, pointing forward
    x_com = segment_com_positions(thigh, q)[0, 0]
    assert x_com == pytest.approx(0.18)
    g = gravity_torques(thigh, q)
    assert g[0] == pytest.approx(7.0 * GRAVITY * 0.18, rel=1e-9)
    assert inverse_dynamics(thigh, q, np.zeros(3), np.zeros(3))[0] == pytest.approx(g[0])


def test_hip_gravity_torque_is_total_weight_times_horizontal_com(chain):
    q, _, _ = _poses(10, 9)
    com = segment_com_positions(chain, q)
    expected = GRAVITY * (chain.mass * com[..., 0]).sum(-1)
    torch.testing.assert_close(gravity_torques(chain, q)[..., 0], expected)


def test_knee_flexion_moves_the_ankle_backwards_and_dorsiflexion_lifts_the_toes(chain):
    straight = joint_positions(chain, np.zeros(3))
    flexed = joint_positions(chain, np.array([0.0, -0.5, 0.0]))
    assert flexed[2, 0] < straight[2, 0] - 0.1
    dorsi = joint_positions(chain, np.array([0.0, 0.0, 0.3]))
    assert dorsi[3, 1] > straight[3, 1] + 0.03
    hip_flexed = joint_positions(chain, np.array([0.5, 0.0, 0.0]))
    assert hip_flexed[1, 0] > straight[1, 0] + 0.1
    np.testing.assert_allclose(straight[0], [0.0, 0.0])


def test_numpy_in_numpy_out_and_float32_follow_the_input(chain):
    q, qd, qdd = (x.numpy() for x in _poses(4, 10))
    tau = inverse_dynamics(chain, q, qd, qdd)
    assert isinstance(tau, np.ndarray) and tau.shape == (4, 3) and tau.dtype == np.float64
    tau32 = inverse_dynamics(
        chain, torch.tensor(q, dtype=torch.float32), qd.astype(np.float32), qdd
    )
    assert tau32.dtype == torch.float32
    np.testing.assert_allclose(tau32.numpy(), tau, rtol=1e-4, atol=1e-3)
    assert grf_torques(chain, q, np.array([0.0, 700.0]), np.array([0.1, -0.9])).shape == (4, 3)


def test_gradients_flow_through_inverse_dynamics(chain):
    q, qd, qdd = _poses(4, 11)
    q.requires_grad_(True)
    inverse_dynamics(chain, q, qd, qdd).square().sum().backward()
    assert torch.isfinite(q.grad).all() and q.grad.abs().max() > 0


def test_bad_shapes_say_what_was_expected(chain):
    with pytest.raises(ValueError, match=r"q must have shape \(\.\.\., 3\)"):
        inverse_dynamics(chain, np.zeros(2), np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="masses must be positive"):
        LegChain([1.0, 0.0, 1.0], [1, 1, 1], np.zeros((3, 2)), np.zeros((3, 2)))


def _opensim_swing_model(path):
    osim = pytest.importorskip("opensim")
    osim.Logger.setLevelString("error")
    model = osim.Model(str(path))
    forces = model.updForceSet()
    for i in range(forces.getSize()):
        forces.get(i).set_appliesForce(False)  # gravity and inertia only: a swinging leg
    return osim, model, model.initSystem()


def test_agrees_with_opensim_inverse_dynamics_of_gait2392_with_a_moving_pelvis(generic_model):
    """OpenSim's 3-D gait2392 (knee translation, oblique ankle, three foot bodies) vs
    the planar chain of calib's generic subject: same signs, within 8 % of the largest torque
    (knee: up to 3 N m of 45 from the knee's translation the planar chain leaves out)."""
    osim, model, state = _opensim_swing_model(generic_model)
    subject = generic_subject()
    coordinates = model.getCoordinateSet()
    joints = ["hip_flexion_r", "knee_angle_r", "ankle_angle_r"]
    pelvis = ["pelvis_tilt", "pelvis_tx", "pelvis_ty"]
    speed_index = {}
    for name in joints + pelvis:
        for i in range(coordinates.getSize()):
            coordinates.get(i).setSpeedValue(state, 0.0)
        coordinates.get(name).setSpeedValue(state, 1.0)
        u = state.getU()
        speed_index[name] = next(k for k in range(state.getNU()) if u.get(k) > 0.5)
    solver = osim.InverseDynamicsSolver(model)
    rng = np.random.default_rng(12)
    ours, theirs = [], []
    for sample in range(10):
        q = rng.uniform([-0.3, -1.4, -0.4], [1.0, -0.05, 0.3])
        qd, qdd = rng.normal(0.0, 3.0, 3), rng.normal(0.0, 30.0, 3)
        moving = sample % 2 == 1
        tilt, rate, tilt_acc = rng.normal(0.0, [0.15, 1.0, 10.0]) if moving else (0.0, 0.0, 0.0)
        pelvis_acc = rng.normal(0.0, 5.0, 2) if moving else np.zeros(2)
        for i in range(coordinates.getSize()):
            coordinates.get(i).setValue(state, 0.0, False)
            coordinates.get(i).setSpeedValue(state, 0.0)
        for name, value, speed in zip([*joints, "pelvis_tilt"], [*q, tilt], [*qd, rate]):
            coordinates.get(name).setValue(state, value, False)
            coordinates.get(name).setSpeedValue(state, speed)
        model.assemble(state)
        model.realizeVelocity(state)
        udot = osim.Vector(state.getNU(), 0.0)
        for name, value in zip(joints + pelvis, [*qdd, tilt_acc, *pelvis_acc]):
            udot.set(speed_index[name], value)
        tau = solver.solve(state, udot)
        theirs.append([tau.get(speed_index[name]) for name in joints])
        # the hip centre's acceleration: pelvis origin's plus rotation about it
        c, s = math.cos(tilt), math.sin(tilt)
        r = np.array(
            [
                c * subject.hip_centre[0] - s * subject.hip_centre[1],
                s * subject.hip_centre[0] + c * subject.hip_centre[1],
            ]
        )
        hip_acc = pelvis_acc + tilt_acc * np.array([-r[1], r[0]]) - rate**2 * r
        base = BaseMotion(np.array(tilt), np.array(rate), np.array(tilt_acc), hip_acc)
        ours.append(inverse_dynamics(subject, q, qd, qdd, base=base))
    ours, theirs = np.array(ours), np.array(theirs)
    scale = np.abs(theirs).max(axis=0)
    assert scale[0] > 50.0 and scale[1] > 20.0
    np.testing.assert_array_less(np.abs(ours - theirs).max(axis=0), 0.08 * scale + 0.05)


def test_a_subject_works_wherever_a_chain_does(chain):
    subject = default_subject()
    q, qd, qdd = (x.numpy() for x in _poses(3, 13))
    np.testing.assert_allclose(
        inverse_dynamics(subject, q, qd, qdd), inverse_dynamics(chain, q, qd, qdd), rtol=1e-12
    )
    force, cop = np.array([20.0, 650.0]), np.array([0.1, -0.85])
    np.testing.assert_allclose(
        grf_torques(subject, q, force, cop), grf_torques(chain, q, force, cop), rtol=1e-12
    )
    assert joint_positions(subject, q).shape == (3, 4, 2)
