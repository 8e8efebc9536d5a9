"""Height/mass scaling of the generic gait2392 subject."""

import numpy as np
import pytest

from calib import PAPER_MUSCLES, SubjectError
from calib.scaling import (
    FORCE_MASS_EXPONENT,
    apply_strength,
    generic_subject,
    scale_subject,
    select_muscles,
)

Q = np.array(
    [[0.3, 0.1, -0.2, -0.9, 0.1], [-0.4, -0.2, 0.1, -0.1, -0.3], [0.9, 0.05, 0.25, -1.8, 0.4]]
)


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
    assert dict(same.joints) == dict(generic.joints)
    assert same.muscles == generic.muscles


def _features(s):
    return {
        "leg length": sum(np.linalg.norm(s.segments[n].distal_joint) for n in ("thigh", "shank")),
        "foot length": np.linalg.norm(s.segments["foot"].distal_joint),
        "hip width": s.hip_centre[2],
        "thigh mass": s.segments["thigh"].mass,
        "shank inertia": np.linalg.eigvalsh(s.segments["shank"].inertia),
        "foot inertia": np.linalg.eigvalsh(s.segments["foot"].inertia),
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
        "hip width",
        "shank inertia",
        "foot inertia",
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
    for key in ("thigh mass", "shank inertia", "foot inertia", "forces"):
        assert np.all(series[0][key] < series[1][key]) and np.all(
            series[1][key] < series[2][key]
        ), key
    for key in ("leg length", "paths", "fibres"):
        np.testing.assert_array_equal(series[0][key], series[2][key])


def test_scaling_rules(generic):
    k_h, k_m = 1.62 / generic.body.height, 58.0 / generic.body.mass
    s = scale_subject(generic, 1.62, 58.0)
    for name in ("thigh", "shank", "foot"):
        g, scaled = generic.segments[name], s.segments[name]
        np.testing.assert_allclose(scaled.inertia, np.array(g.inertia) * k_m * k_h**2)
        np.testing.assert_allclose(scaled.com, np.array(g.com) * k_h)
        np.testing.assert_allclose(scaled.distal_joint, np.array(g.distal_joint) * k_h)
    np.testing.assert_allclose(s.hip_centre, np.array(generic.hip_centre) * k_h)
    assert s.joints == generic.joints
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
    assert select_muscles(generic, "paper").muscle_names == PAPER_MUSCLES
    assert select_muscles(generic, None).muscle_names == generic.muscle_names
    assert select_muscles(generic, "all").muscle_names == generic.muscle_names
    two = select_muscles(generic, "soleus_r, tib_ant_r")
    assert two.muscle_names == ("soleus_r", "tib_ant_r")
    with pytest.raises(SubjectError, match="unknown muscle"):
        select_muscles(generic, "soleus_r,biceps_brachii")
    with pytest.raises(SubjectError, match="'paper'"):
        select_muscles(generic, " , ")
    weak = apply_strength(two, {"tib_ant_r": 0.4})
    assert weak.muscles[1].strength_scale == 0.4
    assert weak.muscle_arrays().max_isometric_force[1] == pytest.approx(
        0.4 * two.muscles[1].max_isometric_force
    )
    with pytest.raises(SubjectError, match="unknown muscle"):
        apply_strength(two, {"psoas_r": 0.4})
