"""Path polynomials: exact moment arms, array layout, and the fitter's algebra."""

import dataclasses

import numpy as np
import pytest

from calib import default_subject
from calib.path_fit import FitSettings, PathSamples, evaluate_path, fit_degree, fit_path
from calib.scaling import generic_subject
from calib.subject import PathPolynomial

RANGE = ((-0.6, 1.1), (-2.1, 0.17), (-0.7, 0.52))


def _poses(n, seed):
    rng = np.random.default_rng(seed)
    lo, hi = np.array(RANGE).T
    return lo + rng.random((n, 3)) * (hi - lo)


@pytest.mark.parametrize("make", [default_subject, generic_subject], ids=["ten", "all"])
def test_moment_arms_are_the_negative_finite_difference_derivative(make):
    subject = make()
    q = _poses(40, seed=1)
    h = 1e-6
    fd = np.empty(q.shape[:1] + (len(subject.muscles), 3))
    for j in range(3):
        step = np.zeros(3)
        step[j] = h
        fd[..., j] = -(
            subject.muscle_tendon_length(q + step) - subject.muscle_tendon_length(q - step)
        ) / (2 * h)
    np.testing.assert_allclose(subject.moment_arms(q), fd, atol=1e-8)


def test_shapes_single_pose_and_batches():
    subject = default_subject()
    m = len(subject.muscles)
    q = _poses(12, seed=2).reshape(3, 4, 3)
    assert subject.muscle_tendon_length(q[0, 0]).shape == (m,)
    assert subject.moment_arms(q[0, 0]).shape == (m, 3)
    assert subject.muscle_tendon_length(q).shape == (3, 4, m)
    assert subject.moment_arms(q).shape == (3, 4, m, 3)
    np.testing.assert_allclose(
        subject.muscle_tendon_length(q)[1, 2], subject.muscle_tendon_length(q[1, 2])
    )
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        subject.muscle_tendon_length(np.zeros(2))


def test_muscles_do_not_depend_on_joints_they_do_not_cross():
    subject = generic_subject()
    arms = subject.moment_arms(_poses(30, seed=3))
    for k, muscle in enumerate(subject.muscles):
        for j, joint in enumerate(("hip", "knee", "ankle")):
            if joint not in muscle.path.crosses:
                assert np.all(arms[:, k, j] == 0.0), (muscle.name, joint)


def test_muscle_arrays_reproduce_lengths_and_apply_strength():
    subject = default_subject()
    weak = dataclasses.replace(
        subject,
        muscles=(dataclasses.replace(subject.muscles[0], strength_scale=0.5),)
        + subject.muscles[1:],
    )
    arrays = weak.muscle_arrays()
    assert arrays.path_exponents.dtype == np.int64
    assert arrays.path_exponents.shape[1] == 3
    assert arrays.path_coefficients.shape == (len(subject.muscles), len(arrays.path_exponents))
    assert arrays.max_isometric_force[0] == 0.5 * subject.muscles[0].max_isometric_force
    assert arrays.max_isometric_force[1] == subject.muscles[1].max_isometric_force
    q = _poses(25, seed=4)
    terms = np.prod(q[:, None, :] ** arrays.path_exponents[None], axis=-1)
    np.testing.assert_allclose(
        terms @ arrays.path_coefficients.T, subject.muscle_tendon_length(q), atol=1e-12
    )
    arrays.path_coefficients[:] = 0.0  # a copy: the subject is unchanged
    assert np.all(weak.muscle_tendon_length(q) > 0.05)


def test_fit_recovers_a_polynomial_it_can_represent():
    truth = PathPolynomial(
        crosses=("knee", "ankle"),
        exponents=((0, 0, 0), (0, 1, 0), (0, 0, 1), (0, 2, 1), (0, 0, 3)),
        coefficients=(0.4, -0.02, 0.03, 0.004, -0.002),
    )
    settings = FitSettings(joint_range=RANGE, degrees=(3, 4))
    q = _poses(200, seed=5)
    q[:, 0] = 0.0
    length, arms = evaluate_path(truth, q)
    fitted = fit_degree(PathSamples(q, length, arms), ("knee", "ankle"), 4, settings)
    check = _poses(50, seed=6)
    np.testing.assert_allclose(
        evaluate_path(fitted, check)[0], evaluate_path(truth, check)[0], atol=1e-12
    )
    np.testing.assert_allclose(
        evaluate_path(fitted, check)[1], evaluate_path(truth, check)[1], atol=1e-11
    )
    assert all(e[0] == 0 for e in fitted.exponents)


def test_degree_choice_prefers_the_lowest_good_degree():
    truth = PathPolynomial(("hip",), ((0, 0, 0), (1, 0, 0), (2, 0, 0)), (0.3, 0.01, -0.02))
    settings = FitSettings(joint_range=RANGE, degrees=(2, 3, 4, 5))
    train_q = np.zeros((30, 3))
    train_q[:, 0] = np.linspace(*RANGE[0], 30)
    held_q = np.zeros((29, 3))
    held_q[:, 0] = (train_q[1:, 0] + train_q[:-1, 0]) / 2
    train = PathSamples(train_q, *evaluate_path(truth, train_q))
    held = PathSamples(held_q, *evaluate_path(truth, held_q))
    path, degree, error = fit_path(train, held, ("hip",), settings)
    assert path.crosses == ("hip",)
    assert degree == 2
    assert error.length_rms < 1e-12
