"""Path polynomials: exact moment arms, array layout, and the fitter's algebra."""

import dataclasses
from math import comb

import numpy as np
import pytest

from calib import COORDINATES, default_subject
from calib.path_fit import (
    FitSettings,
    PathSamples,
    evaluate_path,
    fit_degree,
    fit_path,
    total_degree_exponents,
)
from calib.scaling import generic_subject
from calib.subject import PathPolynomial

RANGE = ((-0.6, 1.1), (-0.35, 0.35), (-0.35, 0.35), (-2.0, 0.17), (-0.6, 0.5))


def _poses(n, seed):
    rng = np.random.default_rng(seed)
    lo, hi = np.array(RANGE).T
    return lo + rng.random((n, 5)) * (hi - lo)


@pytest.mark.parametrize("make", [default_subject, generic_subject], ids=["default", "generic"])
def test_moment_arms_are_the_negative_finite_difference_derivative(make):
    subject = make()
    q = _poses(40, seed=1)
    h = 1e-6
    fd = np.empty((*q.shape[:1], len(subject.muscles), 5))
    for j in range(5):
        step = np.zeros(5)
        step[j] = h
        fd[..., j] = -(
            subject.muscle_tendon_length(q + step) - subject.muscle_tendon_length(q - step)
        ) / (2 * h)
    arms = subject.moment_arms(q)
    np.testing.assert_allclose(arms, fd, atol=1e-8)
    # Every coordinate carries real moment arms, so the comparison tests each column.
    assert np.all(np.abs(arms).max(axis=(0, 1)) > 0.02)


def test_shapes_single_pose_and_batches():
    subject = default_subject()
    m = len(subject.muscles)
    q = _poses(12, seed=2).reshape(3, 4, 5)
    assert subject.muscle_tendon_length(q[0, 0]).shape == (m,)
    assert subject.moment_arms(q[0, 0]).shape == (m, 5)
    assert subject.muscle_tendon_length(q).shape == (3, 4, m)
    assert subject.moment_arms(q).shape == (3, 4, m, 5)
    np.testing.assert_allclose(
        subject.muscle_tendon_length(q)[1, 2], subject.muscle_tendon_length(q[1, 2])
    )


def test_muscles_do_not_depend_on_coordinates_they_do_not_cross():
    subject = generic_subject()
    arms = subject.moment_arms(_poses(30, seed=3))
    for k, muscle in enumerate(subject.muscles):
        for j, coordinate in enumerate(COORDINATES):
            if coordinate not in muscle.path.crosses:
                assert np.all(arms[:, k, j] == 0.0), (muscle.name, coordinate)
            else:
                assert np.abs(arms[:, k, j]).max() > 0.0, (muscle.name, coordinate)


def test_muscle_arrays_reproduce_lengths_and_apply_strength():
    subject = default_subject()
    weak = dataclasses.replace(
        subject,
        muscles=(dataclasses.replace(subject.muscles[0], strength_scale=0.5), *subject.muscles[1:]),
    )
    arrays = weak.muscle_arrays()
    assert arrays.path_exponents.dtype == np.int64
    assert arrays.path_exponents.shape[1] == 5
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


def test_total_degree_basis_uses_only_the_crossed_coordinates():
    crosses = ("hip_flexion", "hip_adduction", "hip_rotation", "knee_angle")
    exps = total_degree_exponents(crosses, 4)
    assert exps.shape == (comb(4 + 4, 4), 5)
    assert np.all(exps[:, 4] == 0) and exps.sum(axis=1).max() == 4
    assert len({tuple(e) for e in exps}) == len(exps)


def test_fit_recovers_a_four_coordinate_polynomial_it_can_represent():
    crosses = ("hip_flexion", "hip_adduction", "hip_rotation", "knee_angle")
    truth = PathPolynomial(
        crosses=crosses,
        exponents=(
            (0, 0, 0, 0, 0),
            (1, 0, 0, 0, 0),
            (0, 1, 0, 0, 0),
            (0, 0, 1, 1, 0),
            (1, 1, 0, 1, 0),
            (0, 0, 0, 3, 0),
        ),
        coefficients=(0.4, -0.02, 0.03, 0.004, -0.002, 0.001),
    )
    settings = FitSettings(ranges=RANGE, degrees=(3, 4))
    q = _poses(400, seed=5)
    length, arms = evaluate_path(truth, q)
    fitted = fit_degree(PathSamples(q, length, arms), crosses, 3, settings)
    check = _poses(50, seed=6)
    np.testing.assert_allclose(
        evaluate_path(fitted, check)[0], evaluate_path(truth, check)[0], atol=1e-9
    )
    np.testing.assert_allclose(
        evaluate_path(fitted, check)[1], evaluate_path(truth, check)[1], atol=1e-9
    )
    assert all(e[4] == 0 for e in fitted.exponents)


def _one_coordinate_samples(truth, n):
    q = np.zeros((n, 5))
    q[:, 0] = np.linspace(*RANGE[0], n)
    return PathSamples(q, *evaluate_path(truth, q))


def test_degree_choice_prefers_the_lowest_good_degree():
    truth = PathPolynomial(
        ("hip_flexion",),
        ((0, 0, 0, 0, 0), (1, 0, 0, 0, 0), (2, 0, 0, 0, 0)),
        (0.3, 0.01, -0.02),
    )
    settings = FitSettings(ranges=RANGE, degrees=(2, 3, 4, 5))
    train, held = _one_coordinate_samples(truth, 30), _one_coordinate_samples(truth, 29)
    path, degree, error = fit_path(train, held, ("hip_flexion",), settings)
    assert path.crosses == ("hip_flexion",)
    assert degree == 2
    assert error.length_rms < 1e-12
    assert max(error.moment_arm_rms) < 1e-12


def test_no_basis_beyond_the_term_budget_is_tried():
    crosses = ("hip_flexion", "hip_adduction", "hip_rotation", "knee_angle")
    truth = PathPolynomial(crosses, ((0, 0, 0, 0, 0), (0, 0, 0, 6, 0)), (0.3, 0.01))
    q = _poses(300, seed=7)
    samples = PathSamples(q, *evaluate_path(truth, q))
    settings = FitSettings(ranges=RANGE, degrees=(4, 5, 6), max_terms=comb(5 + 4, 4))
    path, degree, _ = fit_path(samples, samples, crosses, settings)
    assert degree == 5 and len(path.exponents) == comb(5 + 4, 4)
    with pytest.raises(ValueError, match="terms allowed"):
        fit_path(samples, samples, crosses, dataclasses.replace(settings, max_terms=10))
