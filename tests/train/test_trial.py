"""A leg's trial from IK, GRF and ExternalLoads: the real gait2392 trial and synthetic files
with known answers."""

import numpy as np
import pytest

from calib import default_subject
from calib.coordinates import COORDINATES
from train.dynamics3d import PELVIS_COORDINATES, LegModel, leg_kinematics
from train.opensim_io import StorageError, read_storage, write_storage
from train.trial import (
    FREE_MOMENT,
    LegTrial,
    TrialConfig,
    TrialError,
    gait_events,
    load_both_legs,
    load_trial,
    noncausal_derivatives,
    only_in_contact,
)

SUBJECT = default_subject()


@pytest.fixture(scope="module")
def real_legs(subject01_trial_files) -> list[LegTrial]:
    return load_both_legs(*subject01_trial_files, SUBJECT)


def test_real_trial_spans_the_common_time_at_the_model_rate(real_legs):
    right, left = real_legs
    assert (right.side, left.side) == ("r", "l")
    # IK 0.5–4.0 s, GRF 0–2.5 s: kinetics exist for 0.5–2.5 s only
    assert right.time[0] == pytest.approx(0.5) and right.time[-1] == pytest.approx(2.5)
    assert right.n_samples == 201 and right.rate_hz == 100.0
    np.testing.assert_allclose(np.diff(right.time), 0.01, atol=1e-12)
    np.testing.assert_array_equal(right.time, left.time)
    assert right.source[0].endswith("subject01_walk1_ik.mot")
    assert right.measured == COORDINATES + PELVIS_COORDINATES + (FREE_MOMENT,)


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


def test_real_trial_loads_centre_of_pressure_and_free_moment(real_legs):
    weight = 72.6 * 9.81  # subject01's mass (its scaled model)
    for leg in real_legs:
        free = ~leg.contact
        assert free.any() and leg.contact.any()
        for array in (leg.force, leg.cop, leg.free_moment):
            assert np.all(array[free] == 0.0)
        assert 0.95 * weight < leg.force[:, 1].max() < 1.4 * weight
        assert np.all(leg.force[leg.contact, 1] > 0.0)
        # the COP lies on the floor (the plates' surface, y = -7.5 mm in this lab)
        np.testing.assert_allclose(leg.cop[leg.contact, 1], -0.0075, atol=1e-6)
        # a free moment about the vertical only, of a few N m in walking
        assert np.all(leg.free_moment[:, [0, 2]] == 0.0)
        assert 0.5 < np.abs(leg.free_moment[:, 1]).max() < 15.0
        # the mediolateral force is a few percent of body weight, outwards on average
        assert np.abs(leg.force[leg.contact, 2]).max() < 0.15 * weight
    # mirrored, both feet stand to the right of the pelvis's centre, and both feet push the
    # body towards it alike (the same sign of the mean mediolateral force)
    right, left = real_legs
    for leg in real_legs:
        assert np.mean(leg.cop[leg.contact, 2] - leg.pelvis[leg.contact, 5]) > 0.05
    assert np.sign(np.mean(right.force[right.contact, 2])) == np.sign(
        np.mean(left.force[left.contact, 2])
    )
    # on the treadmill the COP passes under the pelvis: ahead of it at heel strike, behind it
    # at toe-off
    stance = np.flatnonzero(right.contact & (right.time > 0.6) & (right.time < 1.42))
    ahead = right.cop[stance, 0] - right.pelvis[stance, 3]
    assert ahead[0] > 0.1 and ahead[-1] < -0.1


def test_real_trial_angles_follow_the_ik_file(subject01_trial_files, real_legs):
    ik = read_storage(subject01_trial_files[0])
    right, left = real_legs
    at = np.searchsorted(ik.time, 1.0 - 1e-9)
    row = np.searchsorted(right.time, 1.0 - 1e-9)
    for leg, side in ((right, "r"), (left, "l")):
        expected = np.deg2rad(ik.columns_of([f"{c}_{side}" for c in COORDINATES])[at])
        # 6 Hz low-pass as in OpenSim's static optimisation: within a degree mid-stance
        np.testing.assert_allclose(leg.q[row], expected, atol=np.deg2rad(1.0))
    assert np.rad2deg(right.q[:, 3].min()) < -60.0
    unfiltered = load_trial(
        *subject01_trial_files, SUBJECT, config=TrialConfig(kinematics_cutoff_hz=None)
    )
    expected = np.deg2rad(ik.columns_of([f"{c}_r" for c in COORDINATES])[at])
    np.testing.assert_allclose(unfiltered.q[row], expected, atol=1e-9)


def test_the_left_leg_is_mirrored_into_the_right_legs_world(subject01_trial_files, real_legs):
    right, left = real_legs
    # the same pelvis seen in the mirror z -> -z: list, rotation and tz change sign
    np.testing.assert_allclose(left.pelvis[:, [0, 3, 4]], right.pelvis[:, [0, 3, 4]])
    np.testing.assert_allclose(left.pelvis[:, [1, 2, 5]], -right.pelvis[:, [1, 2, 5]])
    grf = read_storage(subject01_trial_files[1])
    t = 1.6  # the left foot alone is loaded
    k = np.searchsorted(left.time, t - 1e-9)
    raw = np.array([np.interp(t, grf.time, grf.column(f"1_ground_force_v{a}")) for a in "xyz"])
    assert left.contact[k]
    np.testing.assert_allclose(left.force[k], raw * [1, 1, -1], rtol=0.05, atol=5.0)


# ---- synthetic files with known answers -----------------------------------------------------

PELVIS_COLUMNS = list(PELVIS_COORDINATES)
LEG_COLUMNS = [f"{c}_{side}" for side in "rl" for c in COORDINATES]
LOADS = """<OpenSimDocument Version="40000"><ExternalLoads name="loads"><objects>
<ExternalForce name="right"><applied_to_body>calcn_r</applied_to_body>
<force_expressed_in_body>{frame}</force_expressed_in_body>
<point_expressed_in_body>ground</point_expressed_in_body>
<force_identifier>r_v</force_identifier><point_identifier>r_p</point_identifier>
{torque}</ExternalForce>
</objects><datafile>grf.mot</datafile></ExternalLoads></OpenSimDocument>"""


def foot_point() -> np.ndarray:
    """Midway between ankle and mtp of the default subject at the synthetic mean pose, on y=0."""
    pelvis = np.array([0.0, 0.0, 0.0, 0.0, 0.95, 0.0])
    centres = leg_kinematics(
        LegModel.from_subject(SUBJECT),
        pelvis,
        np.zeros(6),
        np.zeros(6),
        np.zeros(5),
        np.zeros(5),
        np.zeros(5),
    ).joint_centre
    point = 0.5 * (centres[2] + centres[3])
    point[1] = 0.0
    return point


def synthetic_trial(
    tmp_path,
    frame="ground",
    torque=(0.0, 0.0, 0.0),
    ik_end=2.0,
    grf_start=0.0,
    plate_shift=(0.0, 0.0),
    drop=(),
    torque_columns=True,
):
    """A still pelvis at 0.95 m, the leg swinging a little; the right foot loaded (500 N, 50 N
    forwards, 30 N to the right) in 0.5-1.5 s at a fixed plate point under the foot."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    t_ik = np.arange(0.0, ik_end + 1e-9, 1 / 120)
    columns = [c for c in PELVIS_COLUMNS + LEG_COLUMNS if c not in drop]
    ik = np.zeros((t_ik.size, len(columns)))
    for k, name in enumerate(columns):
        if name == "pelvis_ty":
            ik[:, k] = 0.95
        elif name.startswith("hip_flexion"):
            ik[:, k] = 3 * np.sin(2 * np.pi * t_ik)
    write_storage(tmp_path / "ik.mot", t_ik, columns, ik, in_degrees=True)

    t_grf = np.arange(grf_start, 2.0 + 1e-9, 1 / 1000)
    loaded = (t_grf > 0.5) & (t_grf < 1.5)
    point = foot_point() + np.array([plate_shift[0], 0.0, plate_shift[1]])
    on = np.where(loaded, 1.0, 0.0)
    grf = np.column_stack(
        [
            50.0 * on,
            500.0 * on,
            30.0 * on,
            np.where(loaded, point[0], 7.0),
            np.zeros_like(on),
            np.where(loaded, point[2], -3.0),
            torque[0] * on,
            torque[1] * on,
            torque[2] * on,
        ]
    )
    names = ["r_vx", "r_vy", "r_vz", "r_px", "r_py", "r_pz", "r_mx", "r_my", "r_mz"]
    write_storage(tmp_path / "grf.mot", t_grf, names, grf)
    torque_xml = "<torque_identifier>r_m</torque_identifier>" if torque_columns else ""
    (tmp_path / "loads.xml").write_text(LOADS.format(frame=frame, torque=torque_xml))
    return tmp_path / "ik.mot", tmp_path / "grf.mot", tmp_path / "loads.xml"


def test_force_centre_of_pressure_and_free_moment_of_a_known_wrench(tmp_path):
    plain = load_trial(*synthetic_trial(tmp_path / "plain", torque=(0.0, 4.0, 0.0)), SUBJECT)
    t = plain.time
    mid = (t > 0.6) & (t < 1.4)
    assert np.all(plain.contact[mid]) and not plain.contact[t < 0.49].any()
    assert not plain.contact[t > 1.51].any()
    np.testing.assert_allclose(plain.force[mid], [[50.0, 500.0, 30.0]] * int(mid.sum()), rtol=1e-3)
    np.testing.assert_allclose(plain.cop[mid], [foot_point()] * int(mid.sum()), atol=1e-6)
    np.testing.assert_allclose(
        plain.free_moment[mid], [[0.0, 4.0, 0.0]] * int(mid.sum()), atol=1e-3
    )
    # a plate moment about z moves the COP forwards by T_z / F_y; one about x moves it by
    # -T_x / F_y along z; the vertical couple is what is left of T_y
    moved = load_trial(*synthetic_trial(tmp_path / "moved", torque=(-10.0, 4.0, 25.0)), SUBJECT)
    shift = moved.cop[mid] - plain.cop[mid]
    np.testing.assert_allclose(shift[:, 0], 25.0 / 500.0, atol=1e-6)
    np.testing.assert_allclose(shift[:, 2], 10.0 / 500.0, atol=1e-6)
    np.testing.assert_allclose(shift[:, 1], 0.0, atol=1e-9)
    # the wrench about the ground origin is kept: T_y' = T_y - (dz F_x - dx F_z)
    expected = 4.0 - (shift[:, 2] * 50.0 - shift[:, 0] * 30.0)
    np.testing.assert_allclose(moved.free_moment[mid, 1], expected, atol=1e-3)


def test_a_left_foot_is_mirrored(tmp_path):
    files = synthetic_trial(tmp_path, torque=(0.0, 4.0, 0.0))
    text = files[2].read_text().replace("calcn_r", "calcn_l")
    files[2].write_text(text)
    left = load_trial(*files, SUBJECT, side="l", config=TrialConfig(max_cop_distance_m=2.0))
    mid = (left.time > 0.6) & (left.time < 1.4)
    np.testing.assert_allclose(left.force[mid], [[50.0, 500.0, -30.0]] * int(mid.sum()), rtol=1e-3)
    np.testing.assert_allclose(left.cop[mid, 2], -foot_point()[2], atol=1e-6)
    np.testing.assert_allclose(left.free_moment[mid, 1], -4.0, atol=1e-3)


def test_a_centre_of_pressure_away_from_the_foot_is_refused(tmp_path):
    files = synthetic_trial(tmp_path, plate_shift=(0.0, 0.45))
    with pytest.raises(
        TrialError,
        match=r"grf.mot \(r_px, r_py, r_pz\): at 0\.5\d0 s the right "
        r"foot's centre of pressure lies 0\.4\d m from the foot",
    ):
        load_trial(*files, SUBJECT)
    trial = load_trial(*files, SUBJECT, config=TrialConfig(max_cop_distance_m=0.6))
    assert trial.contact.any()


def test_missing_frontal_and_pelvis_columns_are_zero_and_not_measured(tmp_path):
    drop = ("hip_adduction_r", "hip_rotation_r", "pelvis_list", "pelvis_tz")
    trial = load_trial(*synthetic_trial(tmp_path, drop=drop, torque_columns=False), SUBJECT)
    assert trial.missing(COORDINATES + PELVIS_COORDINATES + (FREE_MOMENT,)) == (
        "hip_adduction",
        "hip_rotation",
        "pelvis_list",
        "pelvis_tz",
        FREE_MOMENT,
    )
    np.testing.assert_array_equal(trial.q[:, [1, 2]], 0.0)
    np.testing.assert_array_equal(trial.pelvis[:, [1, 5]], 0.0)
    np.testing.assert_array_equal(trial.free_moment, 0.0)


def test_unusable_inputs_raise_clear_errors(tmp_path):
    files = synthetic_trial(tmp_path / "body", frame="calcn_r")
    with pytest.raises(TrialError, match="expressed in 'calcn_r'; only ground-frame"):
        load_trial(*files, SUBJECT)
    files = synthetic_trial(tmp_path / "ok")
    with pytest.raises(
        TrialError, match=r"no enabled external force on the left foot.*right on calcn_r"
    ):
        load_trial(*files, SUBJECT, side="l")
    with pytest.raises(TrialError, match="side must be 'r' or 'l'"):
        load_trial(*files, SUBJECT, side="x")
    files = synthetic_trial(tmp_path / "apart", ik_end=0.5, grf_start=0.45)
    with pytest.raises(TrialError, match="overlap for too short a time"):
        load_trial(*files, SUBJECT)
    with pytest.raises(TrialError, match="max_cop_distance_m"):
        TrialConfig(max_cop_distance_m=0.0)


def test_missing_required_columns_are_named(tmp_path):
    files = synthetic_trial(tmp_path / "leg", drop=("knee_angle_r", "ankle_angle_r"))
    with pytest.raises(StorageError, match=r"missing column.*'knee_angle_r'.*'ankle_angle_r'"):
        load_trial(*files, SUBJECT)
    files = synthetic_trial(tmp_path / "pelvis", drop=("pelvis_ty",))
    with pytest.raises(StorageError, match=r"missing column.*'pelvis_ty'"):
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


def test_trial_at_another_rate(subject01_trial_files):
    trial = load_trial(*subject01_trial_files, SUBJECT, rate_hz=200.0, side="l")
    assert trial.n_samples == 401 and trial.side == "l"
    strikes, _ = gait_events(trial)
    np.testing.assert_allclose(strikes, [1.247, 2.460], atol=1 / 200)


def test_only_in_contact_zeroes_every_load_in_swing_and_keeps_stance():
    contact = np.array([True, False, True])
    load = np.arange(9.0).reshape(3, 3) + 1
    loads = only_in_contact(contact, load, 2 * load, 3 * load)
    assert set(loads) == {"force", "cop", "free_moment"}
    for scale, name in enumerate(("force", "cop", "free_moment"), start=1):
        np.testing.assert_array_equal(loads[name][[0, 2]], scale * load[[0, 2]])
        np.testing.assert_array_equal(loads[name][1], 0.0)
