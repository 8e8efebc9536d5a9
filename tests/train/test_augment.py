"""Label-free training variants: deterministic, periodic joins, s and s² scaling, the COP carried
by the foot in 3-D, and the physics targets of a variant consistent with its source's."""

from dataclasses import replace

import numpy as np
import pytest

from calib import default_subject
from calib.coordinates import COORDINATES
from train.augment import AugmentConfig, augment_trials, static_support
from train.dynamics3d import GRAVITY, GroundReaction, LegModel, inverse_dynamics, leg_kinematics
from train.physics_targets import PhysicsOptions, required_torques
from train.trial import (
    TrialError,
    check_cop_under_foot,
    gait_events,
    load_both_legs,
    noncausal_derivatives,
)

SUBJECT = default_subject()
WEIGHT_N = SUBJECT.body.mass * -GRAVITY[1]
PURE = {
    "amplitude_range": (1.0, 1.0),
    "offset_rad": 0.0,
    "cycles_per_variant": 1,
    "cycle_speed_jitter": 0.0,
    "cycle_amplitude_jitter": 0.0,
}
EDGE = 10  # samples at each end where the non-causal derivatives use edge fits


@pytest.fixture(scope="module")
def legs(subject01_trial_files):
    return load_both_legs(*subject01_trial_files, SUBJECT)


@pytest.fixture(scope="module")
def model():
    return LegModel.from_subject(SUBJECT)


def right_cycle(trial):
    strikes = np.flatnonzero(np.diff(trial.contact.astype(np.int8)) == 1) + 1
    return int(strikes[0]), int(strikes[1])


def pure_variant(legs, speed, amplitude=1.0):
    config = AugmentConfig(
        speed_range=(speed, speed), **{**PURE, "amplitude_range": (amplitude,) * 2}
    )
    return augment_trials(legs, 1, seed=0, subject=SUBJECT, config=config)[0]


def at_source(values, positions):
    """Columns of ``values`` (N, ...) linearly interpolated at fractional sample ``positions``."""
    flat = values.reshape(values.shape[0], -1)
    grid = np.arange(values.shape[0])
    out = np.column_stack([np.interp(positions, grid, column) for column in flat.T])
    return out.reshape((positions.size, *values.shape[1:]))


def moments(trial, model, ground=True, rates=True):
    """Inverse dynamics (N, 5) N m of a trial with its best non-causal derivatives; without
    ``rates`` every velocity and acceleration is 0 (gravity and ground reaction only)."""
    qd, qdd = noncausal_derivatives(trial.q, trial.rate_hz)
    pd, pdd = noncausal_derivatives(trial.pelvis, trial.rate_hz)
    if not rates:
        qd, qdd, pd, pdd = (np.zeros_like(x) for x in (qd, qdd, pd, pdd))
    reaction = GroundReaction(trial.force, trial.cop, trial.free_moment) if ground else None
    return inverse_dynamics(model, trial.pelvis, pd, pdd, trial.q, qd, qdd, reaction)


def turn_rad(u, v):
    """The angle (N,) rad between the rows of u and v."""
    cosine = np.einsum("ni,ni->n", u, v) / np.linalg.norm(u, axis=1) / np.linalg.norm(v, axis=1)
    return np.arccos(np.clip(cosine, -1.0, 1.0))


def drift_rad(trial):
    """The largest end-to-start change of an angle (rad) over the trial's first cycle, which a
    splice removes: the most the hip-to-COP line (and the force) can turn by it."""
    a, b = right_cycle(trial)
    return np.abs(
        np.concatenate([trial.q[b] - trial.q[a], trial.pelvis[b, :3] - trial.pelvis[a, :3]])
    ).max()


def rms(x, axis=0):
    return np.sqrt(np.mean(np.square(x), axis=axis))


def test_same_seed_same_variants_other_seed_others(legs):
    first = augment_trials(legs, n_variants=2, seed=7, subject=SUBJECT)
    again = augment_trials(legs, n_variants=2, seed=7, subject=SUBJECT)
    other = augment_trials(legs, n_variants=2, seed=8, subject=SUBJECT)
    assert len(first) == 4 and [v.side for v in first] == ["r", "r", "l", "l"]
    for a, b in zip(first, again):
        for name in ("q", "pelvis", "force", "cop", "free_moment", "contact"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert a.variant == b.variant
    assert not np.array_equal(first[0].q[:50], other[0].q[:50])
    assert augment_trials(legs, n_variants=0, seed=7, subject=SUBJECT) == []
    for variant, leg in zip(first, (legs[0], legs[0], legs[1], legs[1])):
        assert variant.measured == leg.measured and variant.source == leg.source


def test_unit_speed_reproduces_the_recorded_cycle(legs):
    right = legs[0]
    a, b = right_cycle(right)
    variant = pure_variant(legs, 1.0)
    assert variant.n_samples == b - a + 1
    # the force turns by the hip-to-COP line's tiny turn from that drift correction: magnitude exact
    np.testing.assert_allclose(
        np.linalg.norm(variant.force[:-1], axis=1),
        np.linalg.norm(right.force[a:b], axis=1),
        rtol=1e-9,
        atol=1e-9,
    )
    stance = right.contact[a:b]
    assert np.all(
        turn_rad(variant.force[:-1][stance], right.force[a:b][stance]) <= drift_rad(right)
    )
    np.testing.assert_allclose(variant.free_moment[:-1], right.free_moment[a:b], atol=1e-9)
    np.testing.assert_array_equal(variant.contact[:-1], right.contact[a:b])
    # only the cycle's end-to-start drift is removed from the angles and the pelvis's periodic part
    drift = np.abs(right.q[b] - right.q[a])
    assert np.all(np.abs(variant.q[:-1] - right.q[a:b]) <= drift + 1e-9)
    drift = np.abs(right.pelvis[b] - right.pelvis[a])
    assert np.all(np.abs(variant.pelvis[:-1] - right.pelvis[a:b]) <= drift + 1e-9)
    # the horizontal position keeps its own travel exactly
    np.testing.assert_allclose(variant.pelvis[:-1, [3, 5]], right.pelvis[a:b, [3, 5]], atol=1e-9)
    # the COP follows the foot through that drift correction: millimetres
    np.testing.assert_allclose(
        variant.cop[variant.contact][:-1], right.cop[a:b][right.contact[a:b]], atol=0.01
    )


def test_unit_variant_keeps_the_recorded_moments(legs):
    """Speed 1, amplitude 1, offset 0: the physics targets of the variant are the recorded ones."""
    right = legs[0]
    a, b = right_cycle(right)
    variant = pure_variant(legs, 1.0)
    options = PhysicsOptions()
    qd, qdd = noncausal_derivatives(variant.q, variant.rate_hz)
    tau = required_torques(variant, SUBJECT, qd, qdd, options)
    qd, qdd = noncausal_derivatives(right.q, right.rate_hz)
    recorded = required_torques(right, SUBJECT, qd, qdd, options)[a : b + 1]
    inside = slice(EDGE, -EDGE)
    peak = np.abs(recorded[inside]).max(axis=0)
    error = rms(tau[inside] - recorded[inside])
    assert np.all(error < 0.03 * peak), dict(zip(COORDINATES, np.round(error / peak, 4)))


@pytest.mark.parametrize("speed", [0.8, 1.25])
def test_time_warp_scales_velocity_acceleration_and_dynamic_force(legs, speed):
    right, left = legs
    a, b = right_cycle(right)
    variant = pure_variant(legs, speed)
    duration = (b - a) / right.rate_hz
    assert variant.duration_s == pytest.approx(duration / speed, abs=1.0 / right.rate_hz)

    # sample k of the variant is source sample a + k * speed
    k = np.arange(EDGE, variant.n_samples - EDGE)
    src = a + k * speed
    for name in ("q", "pelvis"):
        qd_src, qdd_src = noncausal_derivatives(getattr(right, name), right.rate_hz)
        qd, qdd = noncausal_derivatives(getattr(variant, name), variant.rate_hz)
        ref = speed * at_source(qd_src, src)
        np.testing.assert_allclose(qd[k], ref, atol=0.05 * np.abs(ref).max())
        ref = speed**2 * at_source(qdd_src, src)
        np.testing.assert_allclose(qdd[k], ref, atol=0.08 * np.abs(ref).max())

    stance = variant.contact[k]
    support = static_support(right, left, SUBJECT.body.mass)
    force = at_source(right.force, src)
    fy = force[:, 1]
    s_static = at_source(support, src)
    expected = np.maximum(s_static + speed**2 * (fy - s_static), 0)
    ratio = expected[stance] / fy[stance]
    # |F| scales by the vertical ratio exactly; the direction is kept (up to the drift
    # correction's turn)
    np.testing.assert_allclose(
        np.linalg.norm(variant.force[k][stance], axis=1),
        ratio * np.linalg.norm(force[stance], axis=1),
        rtol=1e-5,
    )
    assert np.all(turn_rad(variant.force[k][stance], force[stance]) <= drift_rad(right))
    np.testing.assert_allclose(
        variant.free_moment[k][stance],
        at_source(right.free_moment, src)[stance] * ratio[:, None],
        atol=1e-9,
    )
    # a faster gait pushes harder above body weight and dips deeper below it
    peak_excess = variant.force[:, 1].max() - WEIGHT_N
    recorded_excess = right.force[a:b, 1].max() - WEIGHT_N
    assert (peak_excess > recorded_excess) == (speed > 1)


@pytest.mark.parametrize("speed", [0.8, 1.25])
def test_time_warp_scales_the_inertial_moments_by_s_squared(legs, model, speed):
    """Under a pure warp the moments' inertial part (M(q) q̈ + C(q, q̇) q̇, pelvis included)
    scales by s², the gravity part is kept and the ground reaction's part scales with the
    force. Held against the same spliced cycle at speed 1."""
    unit = pure_variant(legs, 1.0)
    variant = pure_variant(legs, speed)
    k = np.arange(EDGE, variant.n_samples - EDGE)
    src = k * speed

    def parts(trial):
        rigid = moments(trial, model, ground=False)
        static = moments(trial, model, ground=False, rates=False)
        return rigid - static, static, moments(trial, model) - rigid

    inertial, gravity, reaction = (x[k] for x in parts(variant))
    inertial_unit, gravity_unit, reaction_unit = (at_source(x, src) for x in parts(unit))
    expected = speed**2 * inertial_unit
    peak = np.abs(expected).max(axis=0)
    error = rms(inertial - expected)
    assert np.all(error < 0.02 * peak), dict(zip(COORDINATES, np.round(error / peak, 4)))
    # not merely unchanged: the unwarped inertial moments differ from the warped ones by (1 - s²)
    assert np.all(rms(inertial - inertial_unit) > 5 * error)
    np.testing.assert_allclose(gravity, gravity_unit, atol=0.01 * np.abs(gravity_unit).max())
    stance = variant.contact[k] & (np.linalg.norm(at_source(unit.force, src), axis=1) > 50.0)
    weight_ratio = (
        np.linalg.norm(variant.force[k], axis=1)[stance]
        / np.linalg.norm(at_source(unit.force, src), axis=1)[stance]
    )
    expected = reaction_unit[stance] * weight_ratio[:, None]
    peak = np.abs(expected).max(axis=0)
    error = rms(reaction[stance] - expected)
    assert np.all(error < 0.02 * peak), dict(zip(COORDINATES, np.round(error / peak, 4)))


def test_weight_shares_add_up_to_body_weight(legs):
    right, left = legs
    total = static_support(right, left, SUBJECT.body.mass) + static_support(
        left, right, SUBJECT.body.mass
    )
    loaded = right.contact | left.contact
    np.testing.assert_allclose(total[loaded], WEIGHT_N, rtol=1e-9)
    alone = static_support(right, None, SUBJECT.body.mass)
    np.testing.assert_allclose(alone, np.minimum(right.force[:, 1], WEIGHT_N))


def test_spliced_cycles_join_without_jumps(legs):
    config = AugmentConfig(cycles_per_variant=3)
    for variant, leg in zip(augment_trials(legs, 1, seed=3, subject=SUBJECT, config=config), legs):
        strikes, offs = gait_events(variant)
        # starts at a heel strike; three cycles: two more strikes, three toe-offs
        assert variant.contact[0] and len(strikes) == 2 and len(offs) == 3
        for name in ("q", "pelvis"):
            recorded, joined = getattr(leg, name), getattr(variant, name)
            step = np.abs(np.diff(joined, axis=0)).max(axis=0)
            recorded_step = np.abs(np.diff(recorded, axis=0)).max(axis=0)
            assert np.all(step < 1.6 * recorded_step + 1e-4), (name, step, recorded_step)
            _, qdd = noncausal_derivatives(joined, variant.rate_hz)
            _, qdd_recorded = noncausal_derivatives(recorded, leg.rate_hz)
            assert np.all(np.abs(qdd).max(axis=0) < 2.0 * np.abs(qdd_recorded).max(axis=0)), name


def overground(trial, speed_m_s):
    """The treadmill trial seen from the ground: the pelvis, the foot and the COP move on at
    ``speed_m_s`` along x (a constant velocity: the same dynamics)."""
    travel = speed_m_s * (trial.time - trial.time[0])
    pelvis = trial.pelvis.copy()
    pelvis[:, 3] += travel
    cop = trial.cop.copy()
    cop[trial.contact, 0] += travel[trial.contact]
    return replace(trial, pelvis=pelvis, cop=cop, source=(*trial.source, "overground"))


def test_overground_progression_continues_across_joins_and_scales_with_cadence(legs, model):
    walking = [overground(leg, 1.2) for leg in legs]
    config = AugmentConfig(cycles_per_variant=3, cycle_speed_jitter=0.0)
    # the same seed draws the same cycles, speeds and postures for both versions
    treadmill = augment_trials(legs, 2, seed=5, subject=SUBJECT, config=config)
    moving = augment_trials(walking, 2, seed=5, subject=SUBJECT, config=config)
    for on_belt, over_ground, leg in zip(
        treadmill, moving, (walking[0], walking[0], walking[1], walking[1])
    ):
        a, b = right_cycle(leg)
        stride = leg.pelvis[b, 3] - leg.pelvis[a, 3]
        speed = float(over_ground.variant.split("speed x")[1].split(",")[0])
        tx = over_ground.pelvis[:, 3]
        # positions stay continuous across the joins and progress at the cadence-scaled speed
        assert np.abs(np.diff(tx)).max() < 1.1 * 1.2 * speed / over_ground.rate_hz + 0.002
        assert tx[-1] - tx[0] == pytest.approx(3 * stride, rel=0.02)
        slope = np.polyfit(over_ground.time, tx, 1)[0]
        assert slope == pytest.approx(1.2 * speed, rel=0.03)
        check_cop_under_foot(over_ground, model, 0.3)
        # a constant velocity changes no moment
        inside = slice(EDGE, -EDGE)
        tau, tau_belt = moments(over_ground, model)[inside], moments(on_belt, model)[inside]
        np.testing.assert_allclose(tau, tau_belt, atol=0.01 * np.abs(tau_belt).max())


def test_amplitude_scales_excursion_and_the_foot_carries_the_cop(legs, model):
    right = legs[0]
    a, b = right_cycle(right)
    variant = pure_variant(legs, 1.0, amplitude=1.1)
    # 10 % more excursion about the mean, every coordinate, than the same spliced cycle's
    unit = pure_variant(legs, 1.0)
    np.testing.assert_allclose(
        variant.q - variant.q.mean(axis=0), 1.1 * (unit.q - unit.q.mean(axis=0)), atol=1e-12
    )
    stance = variant.contact[:-1] & right.contact[a:b]
    zero6, zero5 = np.zeros(6), np.zeros(5)
    old = leg_kinematics(model, right.pelvis[a:b], zero6, zero6, right.q[a:b], zero5, zero5)
    new = leg_kinematics(model, variant.pelvis[:-1], zero6, zero6, variant.q[:-1], zero5, zero5)

    def in_foot(kinematics, cop):
        return np.einsum(
            "nji,nj->ni", kinematics.orientation[:, 2], cop - kinematics.joint_centre[:, 2]
        )

    # the COP keeps its place in the foot's frame, and so moves in ground
    np.testing.assert_allclose(
        in_foot(new, variant.cop[:-1])[stance], in_foot(old, right.cop[a:b])[stance], atol=2e-3
    )
    assert np.abs(variant.cop[:-1][stance] - right.cop[a:b][stance]).max() > 0.01
    # the force turns with the hip-to-COP line: same magnitude, same angle to the line,
    # a moment about the hip in proportion to the lever
    lever_old = (right.cop[a:b] - old.joint_centre[:, 0])[stance]
    lever_new = (variant.cop[:-1] - new.joint_centre[:, 0])[stance]
    force_old, force_new = right.force[a:b][stance], variant.force[:-1][stance]
    np.testing.assert_allclose(
        np.linalg.norm(force_new, axis=1), np.linalg.norm(force_old, axis=1), rtol=1e-9
    )

    np.testing.assert_allclose(
        turn_rad(lever_new, force_new), turn_rad(lever_old, force_old), atol=1e-7
    )
    ratio = np.linalg.norm(lever_new, axis=1) / np.linalg.norm(lever_old, axis=1)
    np.testing.assert_allclose(
        np.linalg.norm(np.cross(lever_new, force_new), axis=1),
        ratio * np.linalg.norm(np.cross(lever_old, force_old), axis=1),
        rtol=1e-9,
    )
    assert np.abs(force_new - force_old).max() > 1.0


def test_default_variants_stay_plausible(legs, model):
    margin = np.radians(2.0) + 0.15 * np.ptp(legs[0].q, axis=0)
    low = np.minimum(legs[0].q.min(axis=0), legs[1].q.min(axis=0)) - margin
    high = np.maximum(legs[0].q.max(axis=0), legs[1].q.max(axis=0)) + margin
    for variant in augment_trials(legs, 4, seed=11, subject=SUBJECT):
        assert np.all(variant.q >= low) and np.all(variant.q <= high)
        assert np.all(variant.force[:, 1] >= 0)
        for name in ("force", "cop", "free_moment"):
            assert np.all(getattr(variant, name)[~variant.contact] == 0)
        check_cop_under_foot(variant, model, 0.3)
        assert 0.8 * 0.9 < variant.n_samples / 100 / 4 / 1.24 < 1.25 * 1.1
        assert variant.variant.startswith("variant") and "speed x" in variant.variant


def test_unmeasured_coordinates_stay_zero(legs):
    sagittal = [
        replace(
            leg,
            q=leg.q * np.array([1.0, 0.0, 0.0, 1.0, 1.0]),
            measured=tuple(m for m in leg.measured if m not in ("hip_adduction", "hip_rotation")),
        )
        for leg in legs
    ]
    for variant in augment_trials(sagittal, 2, seed=4, subject=SUBJECT):
        assert variant.measured == sagittal[0].measured
        assert np.all(variant.q[:, 1:3] == 0.0)
        assert np.ptp(variant.q[:, 0]) > 0.5


def test_a_trial_without_a_whole_cycle_is_warped_whole(legs):
    piece = legs[0].segment(0, 100)
    (variant,) = augment_trials(
        [piece], 1, seed=0, subject=SUBJECT, config=AugmentConfig(speed_range=(1.25, 1.25))
    )
    assert variant.n_samples == pytest.approx(100 / 1.25, abs=1)
    assert "whole trial" in variant.variant
    np.testing.assert_allclose(
        variant.pelvis[:, 3],
        np.interp(np.arange(variant.n_samples) * 1.25, np.arange(100), piece.pelvis[:, 3]),
        atol=1e-4,
    )


def test_bad_settings_are_refused():
    with pytest.raises(TrialError, match="speed_range"):
        AugmentConfig(speed_range=(1.2, 0.8))
    with pytest.raises(TrialError, match="amplitude_range"):
        AugmentConfig(amplitude_range=(0.0, 1.0))
    with pytest.raises(TrialError, match="cycles_per_variant"):
        AugmentConfig(cycles_per_variant=0)
    with pytest.raises(TrialError, match="n_variants"):
        augment_trials([], -1, seed=0, subject=SUBJECT)
