"""A leg's trial from IK, GRF and ExternalLoads: the real gait2392 trial and synthetic files with known answers."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from train.opensim_io import StorageError, write_storage
from train.trial import (
    LegTrial,
    TrialConfig,
    TrialError,
    gait_events,
    hip_centre_in_ground,
    load_both_legs,
    load_trial,
    noncausal_derivatives,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "opensim-gait2392"


@dataclass(frozen=True)
class _Body:
    mass: float


@dataclass(frozen=True)
class StandInSubject:
    """Test double of calib.Subject: only what load_trial reads.

    Values of subject01's scaled model (subject01_simbody_adjusted.osim): the hip
    joint centre in the pelvis frame; thigh 0.454 m and shank 0.425 m (hip–knee and
    knee–ankle distances at the default pose), foot ≤ 0.20 m from ankle to toe tip.
    """

    hip_centre: tuple[float, float] = (-0.0724376, -0.0677245)
    body: _Body = _Body(mass=72.6)
    leg_reach: float = 0.454 + 0.425 + 0.20


SUBJECT = StandInSubject()


def real_files() -> tuple[Path, Path, Path]:
    paths = (DATA / "subject01_walk1_ik.mot", DATA / "subject01_walk1_grf.mot",
             DATA / "subject01_walk1_grf.xml")
    for path in paths:
        if not path.exists():
            pytest.skip(f"development data {path} is absent (see shared/data/README.md)")
    return paths


@pytest.fixture(scope="module")
def real_legs() -> list[LegTrial]:
    return load_both_legs(*real_files(), SUBJECT)


def test_real_trial_spans_the_common_time_at_the_model_rate(real_legs):
    right, left = real_legs
    assert (right.side, left.side) == ("r", "l")
    # IK 0.5–4.0 s, GRF 0–2.5 s: kinetics exist for 0.5–2.5 s only
    assert right.time[0] == pytest.approx(0.5) and right.time[-1] == pytest.approx(2.5)
    assert right.n_samples == 201 and right.rate_hz == 100.0
    np.testing.assert_allclose(np.diff(right.time), 0.01, atol=1e-12)
    np.testing.assert_array_equal(right.time, left.time)
    assert right.source[0].endswith("subject01_walk1_ik.mot")


def test_real_trial_gait_events(real_legs):
    right, left = real_legs
    step = 1.0 / right.rate_hz
    strikes, offs = gait_events(right)
    np.testing.assert_allclose(strikes, [0.618, 1.853], atol=step)
    np.testing.assert_allclose(offs, [1.410], atol=step)
    # swing at 0.5 s (before the first heel strike), stance at 2.5 s (after the second)
    assert not right.contact[0] and right.contact[-1]
    strikes, _ = gait_events(left)
    np.testing.assert_allclose(strikes, [1.247, 2.460], atol=step)


def test_real_trial_loads_and_centre_of_pressure(real_legs):
    weight = SUBJECT.body.mass * 9.81
    for leg in real_legs:
        free = ~leg.contact
        assert free.any() and leg.contact.any()
        assert np.all(leg.force[free] == 0.0) and np.all(leg.cop[free] == 0.0)
        assert 0.95 * weight < leg.force[:, 1].max() < 1.4 * weight
        assert np.all(leg.force[leg.contact, 1] > 0.0)
        reach = np.linalg.norm(leg.cop[leg.contact], axis=1)
        assert np.all(reach < SUBJECT.leg_reach), reach.max()
        assert np.all(reach > 0.8)
        # the loaded foot is on the floor below the hip, within a step's length fore and aft
        assert np.all((-1.05 < leg.cop[leg.contact, 1]) & (leg.cop[leg.contact, 1] < -0.85))
        assert np.all(np.abs(leg.cop[leg.contact, 0]) < 0.5)
    right = real_legs[0]
    # the centre of pressure travels heel to toe: behind the hip early in stance is
    # wrong; at heel strike the heel is ahead of the hip, at toe-off the toes behind it
    stance = np.flatnonzero(right.contact & (right.time > 0.6) & (right.time < 1.42))
    assert right.cop[stance[0], 0] > 0.1 and right.cop[stance[-1], 0] < -0.1


def test_real_trial_angles_follow_the_ik_file(real_legs):
    from train.opensim_io import read_storage

    ik = read_storage(real_files()[0])
    right = real_legs[0]
    at = np.searchsorted(ik.time, 1.0 - 1e-9)
    expected = np.deg2rad(ik.columns_of(["hip_flexion_r", "knee_angle_r", "ankle_angle_r"])[at])
    row = np.searchsorted(right.time, 1.0 - 1e-9)
    # 6 Hz low-pass as in OpenSim's static optimisation: within a degree mid-stance
    np.testing.assert_allclose(right.q[row], expected, atol=np.deg2rad(1.0))
    assert np.rad2deg(right.q[:, 1].min()) < -60.0
    unfiltered = load_trial(*real_files(), SUBJECT, config=TrialConfig(kinematics_cutoff_hz=None))
    np.testing.assert_allclose(unfiltered.q[row], expected, atol=1e-9)
    assert np.abs(right.hip_acceleration).max() < 5.0
    assert abs(right.pelvis_tilt.mean() - np.deg2rad(ik.column("pelvis_tilt")[:121].mean())) < 0.01


def test_trial_at_another_rate():
    trial = load_trial(*real_files(), SUBJECT, rate_hz=200.0, side="l")
    assert trial.n_samples == 401 and trial.side == "l"
    strikes, _ = gait_events(trial)
    np.testing.assert_allclose(strikes, [1.247, 2.460], atol=1 / 200)


# ---- synthetic files with known answers -----------------------------------------------------

IK_COLUMNS = ["pelvis_tilt", "pelvis_tx", "pelvis_ty", "hip_flexion_r", "knee_angle_r",
              "ankle_angle_r", "hip_flexion_l", "knee_angle_l", "ankle_angle_l"]
LOADS = """<OpenSimDocument Version="40000"><ExternalLoads name="loads"><objects>
<ExternalForce name="right"><applied_to_body>calcn_r</applied_to_body>
<force_expressed_in_body>{frame}</force_expressed_in_body>
<point_expressed_in_body>ground</point_expressed_in_body>
<force_identifier>r_v</force_identifier><point_identifier>r_p</point_identifier>
<torque_identifier>r_m</torque_identifier></ExternalForce>
</objects><datafile>grf.mot</datafile></ExternalLoads></OpenSimDocument>"""


def synthetic_trial(tmp_path, tilt_deg=10.0, bounce=0.02, plate_x=0.4, torque_z=0.0,
                    frame="ground", ik_end=2.0, grf_start=0.0):
    """Pelvis bouncing at 2 Hz, a right foot loaded (500 N) in 0.5–1.5 s at a fixed plate point."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    t_ik = np.arange(0.0, ik_end + 1e-9, 1 / 120)
    ik = np.zeros((t_ik.size, len(IK_COLUMNS)))
    ik[:, 0] = tilt_deg
    ik[:, 1] = 0.1 * t_ik
    ik[:, 2] = 1.0 + bounce * np.sin(2 * np.pi * 2.0 * t_ik)
    ik[:, 3] = 20 * np.sin(2 * np.pi * t_ik)
    ik[:, 4] = -30 + 25 * np.cos(2 * np.pi * t_ik)
    ik[:, 5] = 5.0
    ik[:, 6:9] = ik[:, 3:6]
    write_storage(tmp_path / "ik.mot", t_ik, IK_COLUMNS, ik, in_degrees=True)

    t_grf = np.arange(grf_start, 2.0 + 1e-9, 1 / 1000)
    loaded = (t_grf > 0.5) & (t_grf < 1.5)
    vy = np.where(loaded, 500.0, 0.0)
    grf = np.column_stack([
        np.where(loaded, 50.0, 0.0), vy, np.zeros_like(vy),        # force
        np.where(loaded, plate_x, 7.0), np.zeros_like(vy), np.zeros_like(vy),  # point (garbage unloaded)
        np.zeros_like(vy), np.zeros_like(vy), np.where(loaded, torque_z, 0.0),  # torque
    ])
    columns = ["r_vx", "r_vy", "r_vz", "r_px", "r_py", "r_pz", "r_mx", "r_my", "r_mz"]
    write_storage(tmp_path / "grf.mot", t_grf, columns, grf)
    (tmp_path / "loads.xml").write_text(LOADS.format(frame=frame))
    return tmp_path / "ik.mot", tmp_path / "grf.mot", tmp_path / "loads.xml"


def test_hip_centre_cop_and_base_acceleration_match_known_motion(tmp_path):
    files = synthetic_trial(tmp_path)
    trial = load_trial(*files, SUBJECT)
    t = trial.time
    tilt = np.deg2rad(10.0)
    hip = hip_centre_in_ground(np.full(t.size, tilt), np.column_stack([0.1 * t, 1.0 + 0.02 * np.sin(4 * np.pi * t)]),
                               SUBJECT.hip_centre)
    hx, hy = SUBJECT.hip_centre
    assert hip[0, 0] == pytest.approx(np.cos(tilt) * hx - np.sin(tilt) * hy)
    assert hip[0, 1] == pytest.approx(1.0 + np.sin(tilt) * hx + np.cos(tilt) * hy)
    np.testing.assert_allclose(trial.pelvis_tilt, tilt, atol=1e-9)

    mid = (t > 0.6) & (t < 1.4)
    assert np.all(trial.contact[mid]) and not trial.contact[t < 0.49].any() and not trial.contact[t > 1.51].any()
    np.testing.assert_allclose(trial.force[mid], [[50.0, 500.0]] * int(mid.sum()), rtol=1e-3)
    # a 2 Hz bounce passes the 6 Hz low-pass almost unchanged (≤ 2 mm)
    np.testing.assert_allclose(trial.cop[mid], np.column_stack([0.4 - hip[mid, 0], -hip[mid, 1]]), atol=2e-3)
    # base acceleration: (0, −A ω² sin ωt), ω = 4π rad/s, within the filter's attenuation
    expected = -0.02 * (4 * np.pi) ** 2 * np.sin(4 * np.pi * t)
    inner = (t > 0.2) & (t < 1.8)
    np.testing.assert_allclose(trial.hip_acceleration[inner, 1], expected[inner], atol=0.03 * 3.2)
    np.testing.assert_allclose(trial.hip_acceleration[inner, 0], 0.0, atol=0.05)


def test_free_torque_moves_the_equivalent_centre_of_pressure(tmp_path):
    plain = load_trial(*synthetic_trial(tmp_path / "plain"), SUBJECT)
    shifted = load_trial(*synthetic_trial(tmp_path / "torque", torque_z=25.0), SUBJECT)
    mid = (plain.time > 0.6) & (plain.time < 1.4)
    # a torque T_z at the plate point acts like the force moved by T_z / F_y along x
    np.testing.assert_allclose(shifted.cop[mid, 0] - plain.cop[mid, 0], 25.0 / 500.0, atol=1e-3)
    np.testing.assert_allclose(shifted.cop[mid, 1], plain.cop[mid, 1], atol=1e-9)


def test_unusable_inputs_raise_clear_errors(tmp_path):
    files = synthetic_trial(tmp_path / "body", frame="calcn_r")
    with pytest.raises(TrialError, match="expressed in 'calcn_r'; only ground-frame"):
        load_trial(*files, SUBJECT)
    files = synthetic_trial(tmp_path / "ok")
    with pytest.raises(TrialError, match="no enabled external force on the left foot.*right on calcn_r"):
        load_trial(*files, SUBJECT, side="l")
    with pytest.raises(TrialError, match="side must be 'r' or 'l'"):
        load_trial(*files, SUBJECT, side="x")
    files = synthetic_trial(tmp_path / "apart", ik_end=0.5, grf_start=0.45)
    with pytest.raises(TrialError, match="overlap for too short a time"):
        load_trial(*files, SUBJECT)


def test_missing_leg_column_names_it(tmp_path):
    files = synthetic_trial(tmp_path / "s")
    t = np.arange(0, 2.0, 0.01)
    write_storage(files[0], t, ["pelvis_tilt", "pelvis_tx", "pelvis_ty", "hip_flexion_r"],
                  np.zeros((t.size, 4)), in_degrees=True)
    with pytest.raises(StorageError, match="missing column.*'knee_angle_r'.*'ankle_angle_r'"):
        load_trial(*files, SUBJECT)


def test_grf_path_defaults_to_the_loads_datafile(tmp_path):
    ik, grf, loads = synthetic_trial(tmp_path)
    explicit = load_trial(ik, grf, loads, SUBJECT)
    implicit = load_trial(ik, None, loads, SUBJECT)
    np.testing.assert_array_equal(explicit.force, implicit.force)


def test_noncausal_derivatives_of_known_signals():
    rate = 100.0
    t = np.arange(0, 2, 1 / rate)
    cubic = np.column_stack([t**3, 2 * t**2 - t, np.ones_like(t)])
    qd, qdd = noncausal_derivatives(cubic, rate)
    # a quartic fit differentiates cubics exactly, edges included
    np.testing.assert_allclose(qd, np.column_stack([3 * t**2, 4 * t - 1, 0 * t]), atol=1e-9)
    np.testing.assert_allclose(qdd, np.column_stack([6 * t, 4 + 0 * t, 0 * t]), atol=1e-7)
    w = 2 * np.pi * 1.5
    qd, qdd = noncausal_derivatives(np.sin(w * t), rate)
    np.testing.assert_allclose(qd, w * np.cos(w * t), atol=1e-3 * w)
    np.testing.assert_allclose(qdd[5:-5], -(w**2) * np.sin(w * t[5:-5]), atol=2e-3 * w**2)
    # the edge half-windows extrapolate the edge fit: looser
    np.testing.assert_allclose(qdd, -(w**2) * np.sin(w * t), atol=1.5e-2 * w**2)
    with pytest.raises(TrialError, match="at least 11 samples"):
        noncausal_derivatives(np.zeros((5, 3)), rate)


def test_a_calib_subject_places_the_hip(real_legs):
    from calib import default_subject

    subject = default_subject()
    trial = load_trial(*real_files(), subject)
    stand_in = real_legs[0]
    np.testing.assert_array_equal(trial.contact, stand_in.contact)
    np.testing.assert_array_equal(trial.force, stand_in.force)
    # only the hip centre differs: the COP shifts by the two hips' difference, rotated by the tilt
    origin = np.zeros((trial.n_samples, 2))
    shift = (hip_centre_in_ground(trial.pelvis_tilt, origin, SUBJECT.hip_centre)
             - hip_centre_in_ground(trial.pelvis_tilt, origin, subject.hip_centre))
    np.testing.assert_allclose(trial.cop[trial.contact] - stand_in.cop[trial.contact],
                               shift[trial.contact], atol=1e-12)


def test_hip_centre_matches_opensim_on_the_real_trial():
    osim = pytest.importorskip("opensim", reason="the opensim package (optional extra) is not installed")
    from train.opensim_io import read_storage

    model_path = DATA / "subject01_simbody_adjusted.osim"
    if not model_path.exists():
        pytest.skip(f"development data {model_path} is absent")
    ik = read_storage(real_files()[0])
    model = osim.Model(str(model_path))
    state = model.initSystem()
    coordinates = model.getCoordinateSet()
    lateral = 0.0855522  # subject01's hip_r z in the pelvis frame
    planar_error, projected_error = 0.0, 0.0
    for row in range(0, 121, 6):
        for i in range(coordinates.getSize()):
            coordinate = coordinates.get(i)
            value = ik.column(coordinate.getName())[row]
            rotational = coordinate.getMotionType() == 1
            coordinate.setValue(state, np.deg2rad(value) if rotational else value, False)
        model.realizePosition(state)
        angle = {n: ik.column_radians(n)[row:row + 1] for n in ("pelvis_tilt", "pelvis_list", "pelvis_rotation")}
        origin = ik.columns_of(["pelvis_tx", "pelvis_ty"])[row:row + 1]
        for side, z in (("r", lateral), ("l", -lateral)):
            where = model.getJointSet().get(f"hip_{side}").getParentFrame().getPositionInGround(state)
            truth = np.array([where.get(0), where.get(1)])
            planar = hip_centre_in_ground(angle["pelvis_tilt"], origin, SUBJECT.hip_centre)[0]
            projected = hip_centre_in_ground(angle["pelvis_tilt"], origin, SUBJECT.hip_centre,
                                             angle["pelvis_list"], angle["pelvis_rotation"], z)[0]
            planar_error = max(planar_error, np.abs(planar - truth).max())
            projected_error = max(projected_error, np.abs(projected - truth).max())
    assert projected_error < 1e-9
    assert 1e-3 < planar_error < 0.01


def test_lateral_offset_option_changes_only_the_hip(real_legs):
    config = TrialConfig(hip_lateral_offset_m=0.0855522)
    right = load_trial(*real_files(), SUBJECT, config=config)
    left = load_trial(*real_files(), SUBJECT, config=config, side="l")
    for leg, planar in zip((right, left), real_legs):
        np.testing.assert_array_equal(leg.force, planar.force)
        shift = np.abs(leg.cop[leg.contact] - planar.cop[leg.contact]).max()
        assert 1e-3 < shift < 0.01
    with pytest.raises(TrialError, match="hip_lateral_offset_m"):
        TrialConfig(hip_lateral_offset_m=-0.1)
