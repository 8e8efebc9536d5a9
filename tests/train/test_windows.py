"""Training windows: runtime-exact inputs, the predicted sample, per-sample physics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from calib.coordinates import COORDINATES, SAGITTAL_COORDINATES
from edge.derivatives import DERIVATIVE_TAPS, network_inputs
from train.hill import muscle_forces
from train.opensim_io import Storage
from train.trial import noncausal_derivatives
from train.windows import (
    WindowConfig,
    WindowError,
    WindowSet,
    angle_noise_features,
    build_windows,
    labels_for_windows,
    window_ends,
)

RATE_HZ = 100.0


@pytest.mark.parametrize("inputs", [("hip_flexion", "knee_angle", "ankle_angle"), COORDINATES])
def test_inputs_are_exactly_the_runtime_window_of_the_last_samples(subject, walking_trial, inputs):
    trial = walking_trial()
    config = WindowConfig(input_coordinates=inputs)
    windows = build_windows([trial], subject, config)
    ends = window_ends(trial.n_samples, config)
    assert len(windows) == ends.size
    assert np.all(np.diff(ends) == 2)
    assert windows.input_coordinates == inputs
    history = config.window + DERIVATIVE_TAPS - 1
    columns = [COORDINATES.index(c) for c in inputs]
    for k in (0, len(windows) // 2, len(windows) - 1):
        e = ends[k]
        expected = network_inputs(trial.q[e - history + 1 : e + 1, columns], RATE_HZ)
        assert expected.shape == (20, 3 * len(inputs))
        np.testing.assert_allclose(windows.inputs[k], expected, rtol=1e-6, atol=1e-5)


def test_angle_noise_features_are_the_runtime_features_of_the_noisy_angles(subject, walking_trial):
    trial = walking_trial()
    config = WindowConfig()
    windows = build_windows([trial], subject, config)
    ends = window_ends(trial.n_samples, config)
    history = config.window + DERIVATIVE_TAPS - 1
    rng = np.random.default_rng(3)
    noise = np.radians(0.2) * rng.standard_normal((3, history, 3))
    change = angle_noise_features(torch.as_tensor(noise), RATE_HZ).numpy()
    assert change.shape == (3, config.window, 9)
    for row, k in enumerate((0, len(windows) // 2, len(windows) - 1)):
        e = ends[k]
        angles = trial.q[e - history + 1 : e + 1][:, [0, 3, 4]]
        noisy = network_inputs(angles + noise[row], RATE_HZ)
        np.testing.assert_allclose(windows.inputs[k] + change[row], noisy, rtol=1e-5, atol=1e-4)
    with pytest.raises(WindowError, match="angle noise"):
        angle_noise_features(torch.zeros(2, DERIVATIVE_TAPS - 1, 3), RATE_HZ)


@pytest.mark.parametrize("lookahead", [0, 2, 5])
def test_predicted_sample_is_window_end_minus_lookahead(subject, walking_trial, lookahead):
    trial = walking_trial()
    config = WindowConfig(lookahead=lookahead)
    windows = build_windows([trial], subject, config)
    ends = window_ends(trial.n_samples, config)
    np.testing.assert_allclose(windows.time, trial.time[ends - lookahead])
    np.testing.assert_allclose(windows.q, trial.q[ends - lookahead], rtol=1e-6)


def test_physics_uses_noncausal_derivatives_and_the_inputs_causal_ones(subject, walking_trial):
    trial = walking_trial()
    windows = build_windows([trial], subject, WindowConfig())
    ends = window_ends(trial.n_samples, WindowConfig())
    qd, qdd = noncausal_derivatives(trial.q, RATE_HZ)
    np.testing.assert_allclose(windows.qd, qd[ends], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(windows.qdd, qdd[ends], rtol=1e-5, atol=1e-3)
    # the network's inputs use the causal estimate, which lags: they must differ
    assert np.abs(windows.inputs[:, -1, 1] - qd[ends, 0]).max() > 1e-3
    assert windows.required_torque.shape == (len(windows), 5)
    assert windows.moment_arms.shape == (len(windows), len(subject.muscles), 5)


def test_base_motion_changes_the_required_torque(subject, walking_trial):
    trial = walking_trial()
    with_base = build_windows([trial], subject, WindowConfig(base_motion=True))
    fixed = build_windows([trial], subject, WindowConfig(base_motion=False))
    assert np.abs(with_base.required_torque - fixed.required_torque).max() > 0.5


def test_force_is_affine_in_activation(subject, walking_trial):
    """F = A a + P reproduces train.hill's total and active force at any activation."""
    trial = walking_trial()
    windows = build_windows([trial], subject, WindowConfig())
    qd = windows.qd.astype(np.float64)
    l_mt = torch.as_tensor(subject.muscle_tendon_length(windows.q.astype(np.float64)))
    v_mt = -np.einsum("kmj,kj->km", subject.moment_arms(windows.q.astype(np.float64)), qd)
    a = torch.rand(l_mt.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    forces = muscle_forces(subject.muscle_arrays(), a, l_mt, torch.as_tensor(v_mt))
    affine = windows.force_gain * a.numpy() + windows.force_passive
    np.testing.assert_allclose(affine, forces.total.numpy(), rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(
        windows.force_gain * a.numpy(), forces.active.numpy(), rtol=1e-4, atol=1e-2
    )
    assert np.all(windows.force_gain >= 0) and np.all(windows.force_passive >= 0)


def test_both_legs_and_labels_by_side(subject, walking_trial):
    right, left = walking_trial(side="r"), walking_trial(side="l", phase=np.pi)
    windows = build_windows([right, left], subject, WindowConfig())
    assert set(windows.trial.tolist()) == {0, 1}
    names = subject.muscle_names
    columns = tuple(names) + tuple(n[:-2] + "_l" for n in names)
    time = np.linspace(0.4, 1.7, 50)
    data = np.column_stack([np.full(50, 0.1)] * len(names) + [np.full(50, 0.7)] * len(names))
    storage = Storage(time=time, columns=columns, data=data, in_degrees=False, path="so.sto")
    labels = labels_for_windows(windows, [right, left], names, [storage, storage])
    assert np.allclose(labels[windows.trial == 0], 0.1)
    assert np.allclose(labels[windows.trial == 1], 0.7)
    short = Storage(time=time[:10], columns=columns, data=data[:10], in_degrees=False, path="s")
    with pytest.raises(WindowError, match="covers"):
        labels_for_windows(windows, [right, left], names, [short, short])


def test_split_subset_and_statistics(subject, walking_trial):
    windows = build_windows([walking_trial()], subject, WindowConfig())
    part = windows.subset(np.arange(3))
    assert len(part) == 3 and part.labels is None
    mean, std = windows.input_statistics()
    assert mean.shape == (9,) and np.all(std > 0)


def test_joined_windows_keep_every_field_and_renumber_the_trials(subject, walking_trial):
    """followed_by: every per-window field (physics included) of both sets in order, the
    second set's trials after the first's; labels only where both sets have them."""
    right = build_windows([walking_trial()], subject, WindowConfig())
    left = build_windows([walking_trial(side="l", phase=np.pi)], subject, WindowConfig())
    joined = right.followed_by(left)
    assert len(joined) == len(right) + len(left)
    assert joined.trial_names == right.trial_names + left.trial_names
    for name in WindowSet.per_window_fields():
        if name in ("trial", "labels"):
            continue
        assert np.array_equal(getattr(joined, name)[: len(right)], getattr(right, name)), name
        assert np.array_equal(getattr(joined, name)[len(right) :], getattr(left, name)), name
    assert set(joined.trial[len(right) :]) == {1} and set(joined.trial[: len(right)]) == {0}
    ones = np.ones((len(right), len(subject.muscles)))
    assert right.with_labels(ones).followed_by(left).labels is None
    labelled = right.with_labels(ones).followed_by(left.with_labels(0 * ones[: len(left)]))
    assert labelled.labels is not None and labelled.labels[: len(right)].min() == 1.0
    assert labelled.labels[len(right) :].max() == 0.0
    sagittal = build_windows(
        [walking_trial()], subject, WindowConfig(balanced=SAGITTAL_COORDINATES)
    )
    with pytest.raises(WindowError, match="different balanced"):
        right.followed_by(sagittal)


def test_too_short_a_trial_is_refused(subject, walking_trial):
    with pytest.raises(WindowError, match="window needs"):
        build_windows([walking_trial(n=20)], subject, WindowConfig())
    with pytest.raises(WindowError, match="lookahead"):
        WindowConfig(lookahead=20)
