"""The built-in gait as a leg's trial: the kinetics file, the filter it is replayed through,
scaling to a body, the two legs half a cycle apart, and moments close to the recorded cycle."""

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from helpers.paths import GAIT2392 as DATA
from helpers.paths import SUBJECT01_GRF, SUBJECT01_IK, SUBJECT01_LOADS
from helpers.scripts import load_script, run_script

from calib import default_subject
from calib.coordinates import COORDINATES
from firmware_bridge.normative_gait import SOURCE_HEEL_STRIKES_S, load_normative_gait
from train.augment import augment_trials
from train.dynamics3d import GRAVITY, LegModel
from train.normative import (
    DEFAULT_PATH,
    leg_length_m,
    load_normative_kinetics,
    lowpass_gains,
    normative_leg,
)
from train.physics_targets import FIVE_COORDINATE_DATA, choose_balance
from train.trial import (
    TrialConfig,
    check_cop_under_foot,
    gait_events,
    load_both_legs,
    load_trial,
    lowpass,
)

FILES = (SUBJECT01_IK, SUBJECT01_GRF, SUBJECT01_LOADS)
SUBJECT = default_subject()
PERIOD_S = load_normative_gait().period_s


def body_of(subject, mass_kg: float, scale: float = 1.0):
    """What the built gait reads of a subject, with another body mass and, scaled by
    ``scale``, other segment lengths (the leg's joint centres, the hip's place)."""
    segments = {
        name: SimpleNamespace(
            mass=segment.mass,
            inertia=segment.inertia,
            distal_joint=scale * np.asarray(segment.distal_joint),
            com=scale * np.asarray(segment.com),
        )
        for name, segment in subject.segments.items()
    }
    return SimpleNamespace(
        body=SimpleNamespace(mass=mass_kg),
        segments=segments,
        joints=subject.joints,
        hip_centre=scale * np.asarray(subject.hip_centre),
    )


def test_shipped_kinetics_are_a_walking_stance():
    kinetics = load_normative_kinetics()
    assert 0.55 < kinetics.stance_fraction < 0.7
    s = np.linspace(0.0, 1.0, 101)
    force, free_moment, cop = kinetics.stance_loads(s, weight_n=1.0, leg_length_m=1.0)
    fx, fy, fz = force.T
    np.testing.assert_allclose(force[[0, -1]], 0.0, atol=1e-12)  # zero at heel strike and toe-off
    # two humps above body weight with a valley between them
    assert 1.0 < fy[:50].max() < 1.4 and 1.0 < fy[50:].max() < 1.4 and 0.6 < fy[40:60].min() < 0.95
    assert fx[10:30].mean() < -0.05 and fx[75:95].mean() > 0.05  # braking, then propulsion
    assert np.all(fz[20:95] < 0) and np.abs(fz).max() < 0.12  # pushed medially after loading
    assert np.abs(free_moment[:, 1]).max() < 0.02 and np.all(free_moment[:, [0, 2]] == 0)
    # the centre of pressure rolls from behind the ankle to the forefoot, below the ankle
    assert cop[0, 0] < -0.05 and cop[-1, 0] > 0.2 and np.all(np.diff(cop[5:-5, 0]) > -0.01)
    assert np.all(cop[:, 1] < -0.05)


def test_pelvis_translations_scale_with_leg_length_and_tx_stays_about_zero():
    kinetics = load_normative_kinetics()
    phase = np.linspace(0.0, 1.0, 50, endpoint=False)
    short, tall = kinetics.pelvis_at_phase(phase, 0.8), kinetics.pelvis_at_phase(phase, 1.0)
    np.testing.assert_allclose(short[:, :3], tall[:, :3])
    np.testing.assert_allclose(short[:, 3:], 0.8 * tall[:, 3:])
    assert np.degrees(tall[:, 0].mean()) == pytest.approx(5.2, abs=2.0)  # anterior tilt
    assert 1.0 < tall[:, 4].mean() < 1.3  # the pelvis's height over the floor per leg length
    np.testing.assert_allclose(tall[:, [3, 5]].mean(axis=0), 0.0, atol=1e-12)  # treadmill-like
    np.testing.assert_allclose(kinetics.pelvis_at_phase(phase + 1.0, 1.0), tall, atol=1e-12)


@pytest.mark.parametrize("cutoff_hz", [6.0, 3.0])
def test_lowpass_gains_are_what_the_trial_filter_does_to_a_periodic_signal(cutoff_hz):
    rate_hz, period_s = 100.0, PERIOD_S
    config = TrialConfig(kinematics_cutoff_hz=cutoff_hz)
    rng = np.random.default_rng(0)
    cos, sin = rng.standard_normal((1, 8)), rng.standard_normal((1, 8))
    time = np.arange(round(20 * period_s * rate_hz)) / rate_hz
    k = np.arange(1, 9)
    arg = 2 * np.pi * time[:, None] / period_s * k
    signal = np.cos(arg) @ cos.T + np.sin(arg) @ sin.T
    gain = lowpass_gains(8, period_s, config, rate_hz)
    expected = np.cos(arg) @ (cos * gain).T + np.sin(arg) @ (sin * gain).T
    filtered = lowpass(signal, rate_hz, cutoff_hz, config.filter_order)
    middle = slice(time.size // 4, 3 * time.size // 4)
    np.testing.assert_allclose(filtered[middle], expected[middle], atol=1e-6 * np.abs(signal).max())
    assert np.abs(filtered - signal)[middle].max() > 0.05 * np.abs(signal).max()
    unfiltered = TrialConfig(kinematics_cutoff_hz=None)
    np.testing.assert_array_equal(lowpass_gains(8, period_s, unfiltered, rate_hz), np.ones(8))


def test_a_bad_kinetics_file_is_refused_with_the_recipe(tmp_path):
    document = json.loads(DEFAULT_PATH.read_text())
    del document["pelvis"]
    path = tmp_path / "kinetics.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"kinetics\.json.*fit_normative_kinetics\.py"):
        load_normative_kinetics(path)
    with pytest.raises(ValueError, match="hip adduction and rotation"):
        normative_leg(SUBJECT, 1, "r", gait=replace(load_normative_gait(), hip=None))


def test_normative_legs_are_five_coordinate_trials_with_the_body_carried():
    legs = [normative_leg(SUBJECT, 3, side) for side in ("r", "l")]
    model = LegModel.from_subject(SUBJECT)
    kinetics = load_normative_kinetics()
    weight = SUBJECT.body.mass * -GRAVITY[1]
    assert choose_balance(legs)[0] == COORDINATES
    cycle = round(PERIOD_S * 100)
    for leg, first in zip(legs, (0.0, 0.5 * PERIOD_S)):
        assert leg.measured == FIVE_COORDINATE_DATA and leg.variant == "normative"
        strikes, _ = gait_events(leg)
        np.testing.assert_allclose(strikes[:2] % PERIOD_S, first, atol=0.011)
        assert leg.contact[:cycle].mean() == pytest.approx(kinetics.stance_fraction, abs=0.02)
        for name in ("force", "cop", "free_moment"):
            assert np.all(getattr(leg, name)[~leg.contact] == 0)
        check_cop_under_foot(leg, model, 0.12)
        # the centre of pressure, placed by the foot, lies on one flat floor below the pelvis
        assert np.ptp(leg.cop[leg.contact, 1]) < 0.02
        assert leg.pelvis[:, 4].mean() - leg.cop[leg.contact, 1].mean() > 0.8 * leg_length_m(
            SUBJECT
        )
    # the pelvis comes back to where it was: over a cycle both feet carry body weight on average
    total = sum(leg.force[:cycle, 1] for leg in legs)
    assert total.mean() == pytest.approx(weight, rel=0.02)


def test_the_left_leg_walks_the_right_legs_cycle_half_a_cycle_later():
    rate_hz = 200.0 / PERIOD_S  # half a cycle is 100 samples
    right, left = (normative_leg(SUBJECT, 3, side, rate_hz) for side in ("r", "l"))
    for name in ("q", "pelvis", "force", "cop", "free_moment", "contact"):
        np.testing.assert_allclose(
            getattr(left, name)[:-100], getattr(right, name)[100:], atol=1e-9, err_msg=name
        )


def test_loads_scale_with_body_weight_and_the_pelvis_with_leg_length():
    base = normative_leg(body_of(SUBJECT, 70.0), 2, "r")
    heavy = normative_leg(body_of(SUBJECT, 105.0), 2, "r")
    np.testing.assert_allclose(heavy.force, 1.5 * base.force)
    np.testing.assert_allclose(heavy.free_moment, 1.5 * base.free_moment)
    np.testing.assert_allclose(heavy.cop, base.cop)
    tall = normative_leg(body_of(SUBJECT, 70.0, scale=1.1), 2, "r")
    np.testing.assert_allclose(tall.q, base.q)
    np.testing.assert_allclose(tall.pelvis[:, 3:], 1.1 * base.pelvis[:, 3:], atol=1e-12)
    np.testing.assert_allclose(tall.cop, 1.1 * base.cop, atol=1e-12)  # the whole body scaled
    np.testing.assert_allclose(tall.free_moment, 1.1 * base.free_moment)


@pytest.mark.needs_data
def test_its_moments_are_the_recorded_cycles(tmp_path):
    """Fitted with and built for the same subject, the built right leg needs the moments the
    recorded right leg needed over that cycle (RMS difference under 8 % of each peak)."""
    fit = load_script("fit_normative_kinetics")
    legs = load_both_legs(*FILES, SUBJECT, fit.RATE_HZ)
    raw = load_trial(*FILES, SUBJECT, fit.RATE_HZ, "r", TrialConfig(kinematics_cutoff_hz=None))
    document, errors = fit.fit_kinetics(legs, raw, SUBJECT, SOURCE_HEEL_STRIKES_S, 20, 8)
    assert errors["force per body weight (x, y, z)"].max() < 0.01
    path = tmp_path / "normative_kinetics.json"
    path.write_text(json.dumps(document))
    kinetics = load_normative_kinetics(path)
    figures = load_script("normative_moments").compare(SUBJECT, DATA, kinetics)["r"]
    share = figures["rms"] / figures["peak"]
    assert np.all(share < 0.08), dict(zip(COORDINATES, np.round(share, 3)))
    # a gait with another stance timing does not pass
    late = replace(kinetics, stance_fraction=kinetics.stance_fraction + 0.04)
    figures = load_script("normative_moments").compare(SUBJECT, DATA, late)["r"]
    assert np.any(figures["rms"] / figures["peak"] > 0.08)


@pytest.mark.slow
def test_fit_script_without_data_says_so_in_one_line(tmp_path):
    result = run_script(
        "fit_normative_kinetics", "--data", str(tmp_path), "--out", str(tmp_path / "k.json")
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "pass --data" in result.stderr
    assert not (tmp_path / "k.json").exists()


def test_augmented_variants_of_the_built_gait_keep_the_cop_under_the_foot():
    legs = [normative_leg(SUBJECT, 4, side) for side in ("r", "l")]
    model = LegModel.from_subject(SUBJECT)
    variants = augment_trials(legs, 2, seed=0, subject=SUBJECT)
    assert len(variants) == 4
    for variant in variants:
        assert variant.measured == FIVE_COORDINATE_DATA
        check_cop_under_foot(variant, model, 0.12)
