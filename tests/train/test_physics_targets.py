"""The physics targets: one module for the loss and train-so, options meaning the same in both."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from calib.coordinates import COORDINATES, SAGITTAL_COORDINATES
from train.dynamics3d import GroundReaction, LegModel, inverse_dynamics
from train.hill import muscle_forces
from train.physics_targets import (
    PhysicsError,
    PhysicsOptions,
    choose_balance,
    force_factors,
    required_torques,
    trial_physics,
)
from train.static_optimization import StaticOptimizationConfig, static_optimization
from train.trial import check_cop_under_foot, noncausal_derivatives
from train.windows import WindowConfig, build_windows, window_ends

RATE_HZ = 100.0


def test_five_coordinate_targets_are_the_3d_inverse_dynamics(subject, walking_trial):
    trial = walking_trial()
    physics = trial_physics(trial, subject, PhysicsOptions())
    pelvis_qd, pelvis_qdd = noncausal_derivatives(trial.pelvis, RATE_HZ)
    expected = inverse_dynamics(
        LegModel.from_subject(subject), trial.pelvis, pelvis_qd, pelvis_qdd,
        trial.q, physics.qd, physics.qdd,
        GroundReaction(trial.force, trial.cop, trial.free_moment),
    )  # fmt: skip
    np.testing.assert_allclose(physics.required_torque, expected, rtol=1e-12, atol=1e-9)
    assert physics.moment_arms.shape == (trial.n_samples, len(subject.muscles), 5)
    np.testing.assert_allclose(physics.moment_arms, subject.moment_arms(trial.q))


def test_sagittal_targets_keep_the_sagittal_moment_arms(subject, walking_trial):
    trial = walking_trial()
    physics = trial_physics(trial, subject, PhysicsOptions(balanced=SAGITTAL_COORDINATES))
    assert physics.required_torque.shape == (trial.n_samples, 3)
    np.testing.assert_allclose(physics.moment_arms, subject.moment_arms(trial.q)[..., [0, 3, 4]])


def test_base_motion_off_holds_the_pelvis_still_at_its_measured_pose(subject, walking_trial):
    trial = walking_trial()
    qd, qdd = noncausal_derivatives(trial.q, RATE_HZ)
    still = required_torques(trial, subject, qd, qdd, PhysicsOptions(base_motion=False))
    zero = np.zeros_like(trial.pelvis)
    expected = inverse_dynamics(
        LegModel.from_subject(subject), trial.pelvis, zero, zero, trial.q, qd, qdd,
        GroundReaction(trial.force, trial.cop, trial.free_moment),
    )  # fmt: skip
    np.testing.assert_allclose(still, expected, rtol=1e-12, atol=1e-9)
    moving = required_torques(trial, subject, qd, qdd, PhysicsOptions())
    assert np.abs(moving - still).max() > 1.0  # the pelvis's motion matters here


@pytest.mark.parametrize("balanced", [COORDINATES, SAGITTAL_COORDINATES])
@pytest.mark.parametrize("base_motion", [True, False])
def test_the_loss_and_train_so_balance_the_same_targets(
    subject, walking_trial, balanced, base_motion
):
    trial = walking_trial()
    options = PhysicsOptions(balanced=balanced, base_motion=base_motion)
    physics = trial_physics(trial, subject, options)
    config = WindowConfig(balanced=balanced, base_motion=base_motion)
    windows = build_windows([trial], subject, config)
    predicted = window_ends(trial.n_samples, config) - config.lookahead
    np.testing.assert_allclose(
        windows.required_torque, physics.required_torque[predicted], rtol=1e-5, atol=1e-4
    )
    result = static_optimization(
        subject, trial, StaticOptimizationConfig(balanced=balanced, base_motion=base_motion)
    )
    np.testing.assert_allclose(result.required_torque, physics.required_torque, rtol=1e-12)


def test_force_factors_are_the_hill_model_at_full_activation(subject, walking_trial):
    trial = walking_trial()
    qd, _ = noncausal_derivatives(trial.q, RATE_HZ)
    active, passive = force_factors(subject, trial.q, qd)
    l_mt = torch.as_tensor(subject.muscle_tendon_length(trial.q))
    v_mt = torch.as_tensor(np.einsum("nmj,nj->nm", subject.moment_arms(trial.q), -qd))
    half = muscle_forces(subject.muscle_arrays(), torch.full_like(l_mt, 0.5), l_mt, v_mt)
    np.testing.assert_allclose(0.5 * active, half.active.numpy(), rtol=1e-12)
    np.testing.assert_allclose(passive, half.passive.numpy(), rtol=1e-12)


def test_a_trial_without_frontal_data_balances_sagittally_and_says_why(subject, walking_trial):
    trial = walking_trial()
    sagittal_only = replace(
        trial, measured=tuple(m for m in trial.measured if m != "hip_adduction")
    )
    balanced, reason = choose_balance([trial, sagittal_only])
    assert balanced == SAGITTAL_COORDINATES
    assert "hip_adduction_r" in reason and "sagittal" in reason
    with pytest.raises(PhysicsError, match=r"hip_adduction_r.*--sagittal"):
        choose_balance([sagittal_only], "five")
    with pytest.raises(PhysicsError, match="hip_adduction_r"):
        trial_physics(sagittal_only, subject, PhysicsOptions())
    assert choose_balance([trial])[0] == COORDINATES
    no_free_moment = replace(trial, measured=tuple(m for m in trial.measured if m != "free_moment"))
    assert "free moment" in choose_balance([no_free_moment])[1]


def test_the_synthetic_trial_keeps_its_cop_under_the_foot(subject, walking_trial):
    check_cop_under_foot(walking_trial(), LegModel.from_subject(subject), 0.3)
