"""The runtime's Numba Hill model equals train's torch physics (float64) to 1e-6."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import edge.hill as edge_hill
from calib import default_subject
from calib.scaling import generic_subject, select_muscles
from edge.hill import HillModel
from train.hill import THELEN_GAIT2392, MuscleModel, force_velocity


@pytest.fixture(scope="module", params=["default", "paper ten"])
def subject(request):
    if request.param == "default":
        return default_subject()
    return select_muscles(generic_subject(), "paper")


def _random_samples(subject, n, seed):
    rng = np.random.default_rng(seed)
    lo, hi = subject.coordinate_ranges.T
    q = rng.uniform(lo, hi, size=(n, 5))
    qd = rng.normal(0.0, 4.0, size=(n, 5))
    a = rng.uniform(0.0, 1.0, size=(n, len(subject.muscles)))
    return a, q, qd


def test_numba_equals_torch_on_random_poses_and_activations(subject):
    model = HillModel(subject)
    torch_model = MuscleModel.from_subject(subject)
    a, q, qd = _random_samples(subject, 200, 0)
    tau_ref, forces_ref = torch_model(*(torch.as_tensor(x) for x in (a, q, qd)))
    tau_ref, total_ref, active_ref = (
        x.numpy() for x in (tau_ref, forces_ref.total, forces_ref.active)
    )
    for i in range(len(q)):
        force, active, torque = model.evaluate(a[i], q[i], qd[i])
        scale = np.abs(total_ref[i]).max()
        np.testing.assert_allclose(force, total_ref[i], rtol=1e-6, atol=1e-9 * scale)
        np.testing.assert_allclose(active, active_ref[i], rtol=1e-6, atol=1e-9 * scale)
        np.testing.assert_allclose(
            torque, tau_ref[i], rtol=1e-6, atol=1e-9 * np.abs(tau_ref[i]).max()
        )
    assert np.abs(tau_ref).max() > 10.0  # the samples produce real torques


def test_activations_are_clipped_to_zero_one(subject):
    model = HillModel(subject)
    torch_model = MuscleModel.from_subject(subject)
    _, q, qd = _random_samples(subject, 1, 1)
    raw = np.linspace(-0.5, 1.5, len(subject.muscles))
    force, active, torque = (x.copy() for x in model.evaluate(raw, q[0], qd[0]))
    tau_ref, forces_ref = torch_model(
        *(torch.as_tensor(x) for x in (np.clip(raw, 0.0, 1.0), q[0], qd[0]))
    )
    np.testing.assert_allclose(force, forces_ref.total.numpy(), rtol=1e-6)
    np.testing.assert_allclose(torque, tau_ref.numpy(), rtol=1e-6, atol=1e-9)
    assert np.all(active[raw <= 0.0] == 0.0)


def test_force_velocity_branches_match_torch():
    v = np.linspace(-1.5, 2.5, 801)
    numba_fv = np.array([edge_hill._force_velocity(x) for x in v])
    np.testing.assert_allclose(numba_fv, force_velocity(torch.as_tensor(v)).numpy(), rtol=1e-12)


def test_constants_are_train_s_constants():
    c = THELEN_GAIT2392
    assert (
        c.active_shape,
        c.passive_shape,
        c.passive_strain,
    ) == (edge_hill.ACTIVE_SHAPE, edge_hill.PASSIVE_SHAPE, edge_hill.PASSIVE_STRAIN)
    assert (
        c.af,
        c.flen,
        c.extrapolation_threshold,
    ) == (edge_hill.AF, edge_hill.FLEN, edge_hill.EXTRAPOLATION_THRESHOLD)
    assert c.max_pennation == edge_hill.MAX_PENNATION


def test_outputs_are_preallocated_views_overwritten_by_each_call():
    subject = default_subject()
    model = HillModel(subject)
    model.warmup()
    a, q, qd = _random_samples(subject, 2, 2)
    first = model.evaluate(a[0], q[0], qd[0])
    kept = [x.copy() for x in first]
    second = model.evaluate(a[1].astype(np.float32), q[1].tolist(), qd[1])
    for x, y, old in zip(first, second, kept):
        assert x is y
        assert not np.allclose(y, old)


def test_bad_input_shapes_say_what_is_expected():
    model = HillModel(default_subject())
    with pytest.raises(ValueError, match=r"activations \(43,\)"):
        model.evaluate(np.zeros(9), np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match=r"q \(5,\)"):
        model.evaluate(np.zeros(43), np.zeros(3), np.zeros(5))
