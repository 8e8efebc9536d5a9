"""Label-free training variants: deterministic, periodic joins, s and s² scaling, COP carried by the foot."""

from pathlib import Path

import numpy as np
import pytest

from calib import default_subject
from train.augment import AugmentConfig, augment_trials, static_support
from train.dynamics import GRAVITY, joint_positions
from train.trial import TrialError, gait_events, load_both_legs, noncausal_derivatives

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "opensim-gait2392"
SUBJECT = default_subject()
PURE = {"amplitude_range": (1.0, 1.0), "offset_rad": 0.0, "cycles_per_variant": 1,
        "cycle_speed_jitter": 0.0, "cycle_amplitude_jitter": 0.0}


@pytest.fixture(scope="module")
def legs():
    paths = (DATA / "subject01_walk1_ik.mot", DATA / "subject01_walk1_grf.mot",
             DATA / "subject01_walk1_grf.xml")
    for path in paths:
        if not path.exists():
            pytest.skip(f"development data {path} is absent (see shared/data/README.md)")
    return load_both_legs(*paths, SUBJECT)


def right_cycle(trial):
    strikes = np.flatnonzero(np.diff(trial.contact.astype(np.int8)) == 1) + 1
    return int(strikes[0]), int(strikes[1])


def test_same_seed_same_variants_other_seed_others(legs):
    first = augment_trials(legs, n_variants=2, seed=7, subject=SUBJECT)
    again = augment_trials(legs, n_variants=2, seed=7, subject=SUBJECT)
    other = augment_trials(legs, n_variants=2, seed=8, subject=SUBJECT)
    assert len(first) == 4 and [v.side for v in first] == ["r", "r", "l", "l"]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.q, b.q)
        np.testing.assert_array_equal(a.force, b.force)
        assert a.variant == b.variant
    assert not np.array_equal(first[0].q[:50], other[0].q[:50])
    assert augment_trials(legs, n_variants=0, seed=7, subject=SUBJECT) == []


def test_unit_speed_reproduces_the_recorded_cycle(legs):
    right = legs[0]
    a, b = right_cycle(right)
    (variant,) = augment_trials([right, legs[1]], 1, seed=0, subject=SUBJECT,
                                config=AugmentConfig(speed_range=(1.0, 1.0), **PURE))[:1]
    assert variant.n_samples == b - a + 1
    # the force turns by the hip-to-COP line's tiny turn from that drift correction: magnitude exact
    np.testing.assert_allclose(np.linalg.norm(variant.force[:-1], axis=1),
                               np.linalg.norm(right.force[a:b], axis=1), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(variant.force[:-1], right.force[a:b], atol=5.0)
    np.testing.assert_array_equal(variant.contact[:-1], right.contact[a:b])
    # only the cycle's end-to-start drift is removed from the angles
    drift = np.abs(right.q[b] - right.q[a])
    assert np.all(np.abs(variant.q[:-1] - right.q[a:b]) <= drift + 1e-9)
    # the COP follows the foot through that drift correction: millimetres
    np.testing.assert_allclose(variant.cop[variant.contact][:-1], right.cop[a:b][right.contact[a:b]],
                               atol=0.01)


@pytest.mark.parametrize("speed", [0.8, 1.25])
def test_time_warp_scales_velocity_acceleration_and_dynamic_force(legs, speed):
    right, left = legs
    a, b = right_cycle(right)
    variant = augment_trials([right, left], 1, seed=0, subject=SUBJECT,
                             config=AugmentConfig(speed_range=(speed, speed), **PURE))[0]
    duration = (b - a) / right.rate_hz
    assert variant.duration_s == pytest.approx(duration / speed, abs=1.0 / right.rate_hz)

    # sample k of the variant is source sample k * speed
    k = np.arange(10, variant.n_samples - 10)
    src = a + k * speed
    qd_src, qdd_src = noncausal_derivatives(right.q, right.rate_hz)
    qd, qdd = noncausal_derivatives(variant.q, variant.rate_hz)
    for j in range(3):
        ref = np.interp(src, np.arange(right.n_samples), qd_src[:, j])
        np.testing.assert_allclose(qd[k, j], speed * ref, atol=0.05 * np.abs(speed * ref).max())
        ref = np.interp(src, np.arange(right.n_samples), qdd_src[:, j])
        np.testing.assert_allclose(qdd[k, j], speed**2 * ref, atol=0.08 * np.abs(speed**2 * ref).max())

    stance = variant.contact[k]
    support = static_support(right, left, SUBJECT.body.mass)
    fy = np.interp(src, np.arange(right.n_samples), right.force[:, 1])
    fx = np.interp(src, np.arange(right.n_samples), right.force[:, 0])
    s_static = np.interp(src, np.arange(right.n_samples), support)
    expected = np.maximum(s_static + speed**2 * (fy - s_static), 0)
    ratio = expected[stance] / fy[stance]
    magnitude = np.hypot(fx, fy)[stance]
    # |F| scales by the vertical ratio exactly; the direction is kept (up to the drift correction's turn)
    np.testing.assert_allclose(np.linalg.norm(variant.force[k][stance], axis=1), ratio * magnitude,
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(variant.force[k, 1][stance], expected[stance], atol=5.0)
    np.testing.assert_allclose(variant.force[k, 0][stance], fx[stance] * ratio, atol=5.0)
    acc = np.interp(src, np.arange(right.n_samples), right.hip_acceleration[:, 1])
    np.testing.assert_allclose(variant.hip_acceleration[k, 1], speed**2 * acc, atol=1e-9)
    # a faster gait pushes harder above body weight and dips deeper below it
    weight = SUBJECT.body.mass * GRAVITY
    peak_excess = variant.force[:, 1].max() - weight
    recorded_excess = right.force[a:b, 1].max() - weight
    assert (peak_excess > recorded_excess) == (speed > 1)


def test_weight_shares_add_up_to_body_weight(legs):
    right, left = legs
    weight = SUBJECT.body.mass * GRAVITY
    total = static_support(right, left, SUBJECT.body.mass) + static_support(left, right, SUBJECT.body.mass)
    loaded = right.contact | left.contact
    np.testing.assert_allclose(total[loaded], weight, rtol=1e-9)
    alone = static_support(right, None, SUBJECT.body.mass)
    np.testing.assert_allclose(alone, np.minimum(right.force[:, 1], weight))


def test_spliced_cycles_join_without_jumps(legs):
    config = AugmentConfig(cycles_per_variant=3)
    for variant, leg in zip(augment_trials(legs, 1, seed=3, subject=SUBJECT, config=config), legs):
        strikes, offs = gait_events(variant)
        # starts at a heel strike; three cycles: two more strikes, three toe-offs
        assert variant.contact[0] and len(strikes) == 2 and len(offs) == 3
        recorded_step = np.abs(np.diff(leg.q, axis=0)).max(axis=0)
        step = np.abs(np.diff(variant.q, axis=0)).max(axis=0)
        assert np.all(step < 1.6 * recorded_step), (step, recorded_step)
        _, qdd = noncausal_derivatives(variant.q, variant.rate_hz)
        _, qdd_recorded = noncausal_derivatives(leg.q, leg.rate_hz)
        assert np.all(np.abs(qdd).max(axis=0) < 2.0 * np.abs(qdd_recorded).max(axis=0))


def test_amplitude_scales_excursion_and_the_foot_carries_the_cop(legs):
    right, left = legs
    a, b = right_cycle(right)
    config = AugmentConfig(speed_range=(1.0, 1.0), amplitude_range=(1.1, 1.1), offset_rad=0.0,
                           cycles_per_variant=1, cycle_speed_jitter=0.0, cycle_amplitude_jitter=0.0)
    variant = augment_trials([right, left], 1, seed=0, subject=SUBJECT, config=config)[0]
    # 10 % more excursion about the mean (the drift removal changes it by far less)
    np.testing.assert_allclose(np.ptp(variant.q, axis=0), 1.1 * np.ptp(right.q[a:b + 1], axis=0), rtol=0.02)
    stance = variant.contact[:-1] & right.contact[a:b]
    old = joint_positions(SUBJECT, right.q[a:b], variant.pelvis_tilt[:-1])[:, 2]
    new = joint_positions(SUBJECT, variant.q[:-1], variant.pelvis_tilt[:-1])[:, 2]
    lever_old = np.linalg.norm(right.cop[a:b] - old, axis=1)[stance]
    lever_new = np.linalg.norm(variant.cop[:-1] - new, axis=1)[stance]
    np.testing.assert_allclose(lever_new, lever_old, atol=2e-3)
    assert np.abs(variant.cop[:-1][stance] - right.cop[a:b][stance]).max() > 0.01
    # the force turns with the hip-to-COP line: same magnitude, same moment about the hip
    def hip_moment(cop, force):
        return cop[:, 0] * force[:, 1] - cop[:, 1] * force[:, 0]

    np.testing.assert_allclose(np.linalg.norm(variant.force[:-1][stance], axis=1),
                               np.linalg.norm(right.force[a:b][stance], axis=1), rtol=1e-9)
    np.testing.assert_allclose(hip_moment(variant.cop[:-1], variant.force[:-1])[stance],
                               hip_moment(right.cop[a:b], right.force[a:b])[stance], atol=0.5)


def test_default_variants_stay_plausible(legs):
    limits = np.array([SUBJECT.joints[j].range for j in ("hip", "knee", "ankle")])
    for variant in augment_trials(legs, 4, seed=11, subject=SUBJECT):
        assert np.all(variant.q >= limits[:, 0]) and np.all(variant.q <= limits[:, 1])
        assert np.all(variant.force[:, 1] >= 0)
        assert np.all(variant.force[~variant.contact] == 0) and np.all(variant.cop[~variant.contact] == 0)
        reach = np.linalg.norm(variant.cop[variant.contact], axis=1)
        assert np.all((reach > 0.8) & (reach < 1.15))
        assert 0.8 * 0.9 < variant.n_samples / 100 / 4 / 1.24 < 1.25 * 1.1
        assert variant.variant.startswith("variant") and "speed x" in variant.variant


def test_a_trial_without_a_whole_cycle_is_warped_whole(legs):
    piece = legs[0].segment(0, 100)
    (variant,) = augment_trials([piece], 1, seed=0, subject=SUBJECT,
                                config=AugmentConfig(speed_range=(1.25, 1.25)))
    assert variant.n_samples == pytest.approx(100 / 1.25, abs=1)
    assert "whole trial" in variant.variant


def test_bad_settings_are_refused():
    with pytest.raises(TrialError, match="speed_range"):
        AugmentConfig(speed_range=(1.2, 0.8))
    with pytest.raises(TrialError, match="amplitude_range"):
        AugmentConfig(amplitude_range=(0.0, 1.0))
    with pytest.raises(TrialError, match="cycles_per_variant"):
        AugmentConfig(cycles_per_variant=0)
    with pytest.raises(TrialError, match="n_variants"):
        augment_trials([], -1, seed=0, subject=SUBJECT)
