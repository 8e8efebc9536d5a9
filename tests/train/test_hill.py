"""The Hill model (eqs. 17-20): Thelen 2003 curves, pennation, rigid tendon, R^T F."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from calib import MuscleArrays, default_subject
from calib.scaling import generic_subject
from train.hill import (
    THELEN_GAIT2392,
    MuscleModel,
    active_force_length,
    fiber_kinematics,
    force_velocity,
    generalized_forces,
    muscle_forces,
    muscle_torques,
    passive_force_length,
    path_lengths,
)

C = THELEN_GAIT2392


def _t(x):
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def test_active_force_length_peaks_at_one_at_optimal_length():
    lengths = torch.linspace(0.3, 1.7, 1401, dtype=torch.float64)
    f = active_force_length(lengths)
    assert float(f.max()) == pytest.approx(1.0)
    assert float(lengths[f.argmax()]) == pytest.approx(1.0)
    assert float(active_force_length(_t(1.0))) == 1.0
    torch.testing.assert_close(active_force_length(_t(0.8)), active_force_length(_t(1.2)))
    assert float(active_force_length(_t(1.5))) == pytest.approx(math.exp(-0.25 / 0.5))


def test_passive_force_is_zero_up_to_optimal_length_and_one_at_max_strain():
    assert float(passive_force_length(_t([0.5, 0.9, 1.0])).abs().max()) == 0.0
    assert float(passive_force_length(_t(1.0 + C.passive_strain))) == pytest.approx(1.0)
    grid = passive_force_length(torch.linspace(1.0, 1.8, 50, dtype=torch.float64))
    assert bool((grid.diff() > 0).all())


def test_force_velocity_anchors():
    assert float(force_velocity(_t(0.0))) == 1.0
    assert float(force_velocity(_t(-1.0))) == pytest.approx(0.0, abs=1e-15)
    assert float(force_velocity(_t(-1.5))) == 0.0  # faster than v_max: no pushing
    assert 1.0 < float(force_velocity(_t(0.2))) < C.flen
    grid = torch.linspace(-1.0, 2.0, 3001, dtype=torch.float64)
    assert bool((force_velocity(grid).diff() > 0).all())


def test_force_velocity_inverts_thelens_equations_at_full_activation():
    """Thelen 2003 eqs. 6-7 (as OpenSim writes them, a = 1) map force back to velocity."""
    v0, f0, _ = C.eccentric_knee()
    velocities = np.concatenate([np.linspace(-0.99, -0.01, 30), np.linspace(0.01, v0 - 1e-6, 30)])
    for v in velocities:
        f = float(force_velocity(_t(v)))
        b = 1.0 + f / C.af if f <= 1.0 else (2.0 + 2.0 / C.af) * (C.flen - f) / (C.flen - 1.0)
        assert (f - 1.0) / b == pytest.approx(v, rel=1e-10, abs=1e-12)
    assert float(force_velocity(_t(v0))) == pytest.approx(f0)


def test_force_velocity_is_continuous_with_a_continuous_slope_at_the_eccentric_knee():
    v0, _, slope = C.eccentric_knee()
    v = torch.tensor([v0 - 1e-7, v0, v0 + 1e-7], dtype=torch.float64, requires_grad=True)
    f = force_velocity(v)
    assert float((f[2] - f[0]).detach()) == pytest.approx(2e-7 * slope, rel=1e-4)
    (grad,) = torch.autograd.grad(f.sum(), v)
    assert float(grad[0]) == pytest.approx(slope, rel=1e-5)
    assert float(grad[2]) == pytest.approx(slope, rel=1e-12)


def _one_muscle(phi_o: float) -> MuscleArrays:
    return MuscleArrays(
        max_isometric_force=np.array([1000.0]),
        optimal_fiber_length=np.array([0.1]),
        tendon_slack_length=np.array([0.3]),
        pennation_at_optimal=np.array([phi_o]),
        max_contraction_velocity=np.array([10.0]),
        path_exponents=np.zeros((1, 3), dtype=np.int64),
        path_coefficients=np.array([[0.4]]),
    )


def test_pennation_keeps_fibre_thickness_and_the_tendon_rigid():
    arrays = _one_muscle(0.3)
    p = {
        k: torch.as_tensor(getattr(arrays, k))
        for k in ("optimal_fiber_length", "pennation_at_optimal", "tendon_slack_length")
    }
    l_mt = torch.linspace(0.33, 0.5, 20, dtype=torch.float64)[:, None]
    fiber, cos_phi, phi, v_m = fiber_kinematics(p, l_mt, torch.ones_like(l_mt))
    torch.testing.assert_close(fiber * torch.sin(phi), torch.full_like(fiber, 0.1 * math.sin(0.3)))
    torch.testing.assert_close(fiber * cos_phi, l_mt - 0.3)  # eq. (20), rigid tendon
    torch.testing.assert_close(v_m, cos_phi)
    at_optimal = torch.tensor([[0.3 + 0.1 * math.cos(0.3)]], dtype=torch.float64)
    fiber, _, phi, _ = fiber_kinematics(p, at_optimal, at_optimal * 0)
    assert float(fiber) == pytest.approx(0.1) and float(phi) == pytest.approx(0.3)


def test_isometric_force_at_optimal_length_is_f_max_cos_phi_and_linear_in_activation():
    arrays = _one_muscle(0.2)
    l_mt = np.array([0.3 + 0.1 * math.cos(0.2)])
    for a in (0.0, 0.3, 1.0):
        f = muscle_forces(arrays, np.array([a]), l_mt, np.zeros(1))
        assert f.active[0] == pytest.approx(1000.0 * a * math.cos(0.2))
        assert f.passive[0] == pytest.approx(0.0, abs=1e-9)
        assert f.total[0] == pytest.approx(f.active[0] + f.passive[0])
    stretched = muscle_forces(arrays, np.array([0.0]), np.array([0.45]), np.zeros(1))
    assert stretched.passive[0] > 10.0 and stretched.active[0] == 0.0


def test_shortening_lowers_and_lengthening_raises_the_active_force():
    arrays = _one_muscle(0.0)
    base = {"arrays": arrays, "a": np.array([1.0]), "l_mt": np.array([0.4])}
    iso = muscle_forces(**base, v_mt=np.zeros(1)).active[0]
    fast = muscle_forces(**base, v_mt=np.array([-1.0])).active[0]  # = v_max l_o: zero force
    slow = muscle_forces(**base, v_mt=np.array([-0.2])).active[0]
    eccentric = muscle_forces(**base, v_mt=np.array([0.2])).active[0]
    assert iso == pytest.approx(1000.0)
    assert fast == pytest.approx(0.0, abs=1e-9)
    assert 0.0 < slow < iso < eccentric < C.flen * iso


def test_no_nan_at_or_beyond_the_pennation_limit():
    arrays = _one_muscle(0.4)
    l_mt = torch.tensor([0.3 + 1e-9, 0.3, 0.2, 0.31], dtype=torch.float64)[:, None]
    l_mt.requires_grad_(True)
    a = torch.full_like(l_mt, 0.5, requires_grad=True)
    f = muscle_forces(arrays, a, l_mt, torch.zeros_like(l_mt))
    f.total.sum().backward()
    assert torch.isfinite(f.total).all() and torch.isfinite(l_mt.grad).all()
    assert torch.isfinite(a.grad).all()
    assert float(torch.cos(f.pennation.detach()).min()) == pytest.approx(0.1)


@pytest.mark.parametrize("subject_factory", [default_subject, generic_subject])
def test_torques_are_moment_arms_transposed_times_force(subject_factory):
    subject = subject_factory()
    model = MuscleModel.from_subject(subject)
    rng = np.random.default_rng(1)
    lo, hi = subject.coordinate_ranges.T
    q = rng.uniform(lo, hi, size=(16, 5))
    qd = rng.normal(0.0, 3.0, size=(16, 5))
    a = rng.uniform(0.0, 1.0, size=(16, len(subject.muscles)))
    tau, forces = muscle_torques(model, a, q, qd)
    r = subject.moment_arms(q)  # calib's own numpy evaluation, r = -dl/dq
    np.testing.assert_allclose(tau, np.einsum("nmj,nm->nj", r, forces.total), rtol=1e-10, atol=1e-8)
    step = 1e-6
    v_mt = (
        subject.muscle_tendon_length(q + step * qd) - subject.muscle_tendon_length(q - step * qd)
    ) / (2 * step)
    expected = muscle_forces(subject.muscle_arrays(), a, subject.muscle_tendon_length(q), v_mt)
    np.testing.assert_allclose(forces.total, expected.total, rtol=1e-6, atol=1e-6)
    lengths, gradient = path_lengths(model, torch.as_tensor(q))
    np.testing.assert_allclose(lengths.numpy(), subject.muscle_tendon_length(q), rtol=1e-12)
    np.testing.assert_allclose(-gradient.numpy(), r, rtol=1e-9, atol=1e-12)


def test_float32_and_gradients_through_the_muscle_torques():
    subject = default_subject()
    model = MuscleModel.from_subject(subject)
    q = torch.tensor([[0.3, 0.05, -0.1, -0.6, 0.1]], dtype=torch.float32)
    qd = torch.tensor([[1.0, 0.3, -0.4, -2.0, 0.5]], dtype=torch.float32)
    n = len(subject.muscles)
    a = torch.full((1, n), 0.2, dtype=torch.float32, requires_grad=True)
    tau, forces = model(a, q, qd)
    assert tau.dtype == torch.float32 and forces.total.shape == (1, n) and tau.shape == (1, 5)
    tau64, _ = muscle_torques(model, a.detach().double(), q.double(), qd.double())
    torch.testing.assert_close(tau.double(), tau64, rtol=1e-4, atol=1e-3)
    tau.sum().backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().max() > 0


def test_bad_activation_shape_names_the_muscle_count():
    subject = default_subject()
    with pytest.raises(ValueError, match=rf"\(\.\.\., {len(subject.muscles)}\)"):
        muscle_torques(subject, np.zeros(9), np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match=r"q must have shape \(\.\.\., 5\)"):
        muscle_torques(subject, np.zeros(len(subject.muscles)), np.zeros(3), np.zeros(3))


def test_active_force_matches_opensim_thelen2003muscle(generic_model):
    """OpenSim's own rigid-tendon active force (what its static optimisation uses), a = 1."""
    osim = pytest.importorskip("opensim")
    osim.Logger.setLevelString("error")
    model = osim.Model(str(generic_model))
    state = model.initSystem()
    muscles = [
        osim.Thelen2003Muscle.safeDownCast(model.getMuscles().get(name))
        for name in ("rect_fem_r", "vas_lat_r", "med_gas_r", "semimem_r", "glut_max1_r", "soleus_r")
    ]
    arrays = MuscleArrays(
        max_isometric_force=np.array([m.getMaxIsometricForce() for m in muscles]),
        optimal_fiber_length=np.array([m.getOptimalFiberLength() for m in muscles]),
        tendon_slack_length=np.array([m.getTendonSlackLength() for m in muscles]),
        pennation_at_optimal=np.array([m.getPennationAngleAtOptimalFiberLength() for m in muscles]),
        max_contraction_velocity=np.array([m.getMaxContractionVelocity() for m in muscles]),
        path_exponents=np.zeros((1, 3), dtype=np.int64),
        path_coefficients=np.zeros((len(muscles), 1)),
    )
    coordinates = model.getCoordinateSet()
    rng = np.random.default_rng(2)
    checked = 0
    for _ in range(12):
        for name, lo, hi in (
            ("hip_flexion_r", -0.4, 1.2),
            ("knee_angle_r", -1.6, 0.0),
            ("ankle_angle_r", -0.5, 0.4),
        ):
            coordinates.get(name).setValue(state, rng.uniform(lo, hi), False)
            coordinates.get(name).setSpeedValue(state, rng.normal(0.0, 3.0))
        model.assemble(state)
        model.realizeVelocity(state)
        l_mt = np.array([m.getLength(state) for m in muscles])
        v_mt = np.array([m.getLengtheningSpeed(state) for m in muscles])
        expected = np.array([m.calcInextensibleTendonActiveFiberForce(state, 1.0) for m in muscles])
        ours = muscle_forces(arrays, np.ones(len(muscles)), l_mt, v_mt)
        np.testing.assert_allclose(ours.active, expected, rtol=2e-5, atol=1e-3)
        checked += int((expected > 1.0).sum())
    assert checked > 30


def test_muscle_torque_is_moment_arm_transpose_times_force():
    moment_arms = torch.zeros(1, 2, 3)
    moment_arms[0, 0, 1] = 0.04  # muscle 0 acts on the knee only
    moment_arms[0, 1, 2] = -0.05  # muscle 1 plantarflexes
    forces = torch.tensor([[1000.0, 2000.0]])
    assert torch.allclose(
        generalized_forces(forces, moment_arms), torch.tensor([[0.0, 40.0, -100.0]])
    )
