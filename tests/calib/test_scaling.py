"""Height/mass scaling of the generic gait2392 subject."""

import numpy as np
import pytest

from calib import SubjectError
from calib.osim_import import PAPER_MUSCLES
from calib.scaling import (
    FORCE_MASS_EXPONENT,
    apply_strength,
    generic_subject,
    scale_subject,
    select_muscles,
)

Q = np.array([[0.3, -0.9, 0.1], [-0.4, -0.1, -0.3], [0.9, -1.8, 0.4]])


@pytest.fixture(scope="module")
def generic():
    return generic_subject()


def test_generic_is_gait2392_at_its_own_size(generic):
    assert generic.body.height == pytest.approx(1.80)
    assert generic.body.mass == pytest.approx(75.1646)
    assert len(generic.muscles) == 43
    assert set(PAPER_MUSCLES) <= set(generic.muscle_names)


def test_scaling_is_exact_at_the_generic_size(generic):
    same = scale_subject(generic, generic.body.height, generic.body.mass)
    assert same.body == generic.body
    assert same.hip_centre == generic.hip_centre
    assert dict(same.segments) == dict(generic.segments)
    assert same.muscles == generic.muscles


def _features(s):
    return {
        "leg length": sum(np.hypot(*s.segments[n].distal_joint) for n in ("thigh", "shank")),
        "foot length": np.hypot(*s.segments["foot"].distal_joint),
        "thigh mass": s.segments["thigh"].mass,
        "shank inertia": s.segments["shank"].inertia,
        "forces": s.muscle_arrays().max_isometric_force,
        "fibres": s.muscle_arrays().optimal_fiber_length,
        "tendons": s.muscle_arrays().tendon_slack_length,
        "paths": s.muscle_tendon_length(Q),
        "|moment arms|": np.abs(s.moment_arms(Q)).sum(axis=-1),
    }


@pytest.mark.parametrize("heights", [(1.5, 1.7, 1.9)])
def test_lengths_grow_with_height_masses_do_not(generic, heights):
    series = [_features(scale_subject(generic, h, 70.0)) for h in heights]
    for key in (
        "leg length",
        "foot length",
        "shank inertia",
        "fibres",
        "tendons",
        "paths",
        "|moment arms|",
    ):
        assert np.all(series[0][key] < series[1][key]) and np.all(
            series[1][key] < series[2][key]
        ), key
    for key in ("thigh mass", "forces"):
        np.testing.assert_array_equal(series[0][key], series[2][key])


def test_masses_inertias_forces_grow_with_mass_lengths_do_not(generic):
    series = [_features(scale_subject(generic, 1.75, m)) for m in (50.0, 70.0, 110.0)]
    for key in ("thigh mass", "shank inertia", "forces"):
        assert np.all(series[0][key] < series[1][key]) and np.all(
            series[1][key] < series[2][key]
        ), key
    for key in ("leg length", "paths", "fibres"):
        np.testing.assert_array_equal(series[0][key], series[2][key])


def test_scaling_rules(generic):
    k_h, k_m = 1.62 / generic.body.height, 58.0 / generic.body.mass
    s = scale_subject(generic, 1.62, 58.0)
    g = generic.segments["shank"]
    assert s.segments["shank"].inertia == pytest.approx(g.inertia * k_m * k_h**2)
    assert s.segments["shank"].com[1] == pytest.approx(g.com[1] * k_h)
    np.testing.assert_allclose(
        s.muscle_arrays().max_isometric_force,
        generic.muscle_arrays().max_isometric_force * k_m**FORCE_MASS_EXPONENT,
    )
    np.testing.assert_allclose(s.moment_arms(Q), generic.moment_arms(Q) * k_h)


def test_implausible_sizes_are_refused(generic):
    with pytest.raises(SubjectError, match="height"):
        scale_subject(generic, 17.5, 70.0)
    with pytest.raises(SubjectError, match="mass"):
        scale_subject(generic, 1.75, -70.0)


def test_muscle_selection_and_strength(generic):
    assert select_muscles(generic, None, PAPER_MUSCLES).muscle_names == PAPER_MUSCLES
    assert select_muscles(generic, "all", PAPER_MUSCLES).muscle_names == generic.muscle_names
    two = select_muscles(generic, "soleus_r, tib_ant_r", PAPER_MUSCLES)
    assert two.muscle_names == ("soleus_r", "tib_ant_r")
    with pytest.raises(SubjectError, match="unknown muscle"):
        select_muscles(generic, "soleus_r,biceps_brachii", PAPER_MUSCLES)
    weak = apply_strength(two, {"tib_ant_r": 0.4})
    assert weak.muscles[1].strength_scale == 0.4
    assert weak.muscle_arrays().max_isometric_force[1] == pytest.approx(
        0.4 * two.muscles[1].max_isometric_force
    )
    with pytest.raises(SubjectError, match="unknown muscle"):
        apply_strength(two, {"psoas_r": 0.4})
