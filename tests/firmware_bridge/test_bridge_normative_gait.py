"""The shipped gait cycle: reproducible from the real trial, close to it, periodic, plausible."""

import json

import numpy as np
import pytest
from helpers.paths import SUBJECT01_IK as IK
from helpers.scripts import run_script

from calib.coordinates import COORDINATES
from firmware_bridge.motion_file import MotionFileError, read_joint_angles
from firmware_bridge.normative_gait import (
    DEFAULT_PATH,
    HIP_NAMES,
    JOINT_NAMES,
    POSE_NAMES,
    load_normative_gait,
)


def test_shipped_cycle_is_periodic_with_the_real_period():
    gait = load_normative_gait()
    assert gait.joint_names == JOINT_NAMES
    assert gait.period_s == pytest.approx(1.853 - 0.618)
    np.testing.assert_allclose(
        gait.angles_at_phase([0.0, 0.37]), gait.angles_at_phase([1.0, 2.37]), atol=1e-12
    )
    np.testing.assert_allclose(
        gait.angles_at_time([0.5], period_s=1.0), gait.angles_at_phase([0.5])
    )


def test_shipped_cycle_follows_opensim_conventions():
    q = np.rad2deg(load_normative_gait().angles_at_phase(np.linspace(0, 1, 201)))
    hip, knee, ankle = q.T
    assert hip[0] > 10 and hip.min() < -10  # flexed at heel strike, extended before toe-off
    assert knee.max() < 3 and knee.min() < -55  # knee is negative in flexion, ~ -65 deg in swing
    assert np.argmin(knee) > 120  # the deepest knee flexion falls in swing (phase > 0.6)
    assert ankle.min() > -20 and ankle.max() < 25


@pytest.mark.needs_data
def test_cycle_matches_the_real_trial_within_half_a_degree():
    gait = load_normative_gait()
    time_s, angles = read_joint_angles(IK, POSE_NAMES)
    inside = (time_s >= 0.618) & (time_s <= 1.853)
    model = gait.pose_at_phase((time_s[inside] - 0.618) / gait.period_s)
    rms_deg = np.rad2deg(np.sqrt(np.mean((model - angles[inside]) ** 2, axis=0)))
    assert np.all(rms_deg < 0.5), dict(zip(POSE_NAMES, rms_deg))


def test_pose_holds_the_sagittal_angles_and_the_hip_in_calibs_order():
    gait = load_normative_gait()
    assert tuple(f"{name}_r" for name in COORDINATES) == POSE_NAMES
    phase = np.linspace(-0.3, 2.0, 97)
    pose = gait.pose_at_phase(phase)
    assert pose.shape == (97, 5)
    sagittal = [POSE_NAMES.index(name) for name in JOINT_NAMES]
    np.testing.assert_array_equal(pose[:, sagittal], gait.angles_at_phase(phase))
    np.testing.assert_allclose(gait.pose_at_phase(phase + 1.0), pose, atol=1e-12)
    adduction, rotation = np.rad2deg(pose[:, [POSE_NAMES.index(name) for name in HIP_NAMES]]).T
    # walking's frontal and transverse hip: some 5-10 degrees either side of neutral
    assert 5 < np.ptp(adduction) < 25 and 5 < np.ptp(rotation) < 25
    assert np.abs(adduction).max() < 15 and np.abs(rotation).max() < 20


def test_a_file_without_the_hip_block_still_plays_its_sagittal_angles(tmp_path):
    document = json.loads(DEFAULT_PATH.read_text())
    del document["hip_adduction_rotation"]
    document["schema_version"] = 1
    path = tmp_path / "old.json"
    path.write_text(json.dumps(document))
    old = load_normative_gait(path)
    np.testing.assert_array_equal(
        old.angles_at_phase([0.3]), load_normative_gait().angles_at_phase([0.3])
    )
    with pytest.raises(ValueError, match=r"fit_normative_gait\.py"):
        old.pose_at_phase([0.3])
    document["hip_adduction_rotation"] = {
        "joint_names": ["hip_rotation_r"],
        "mean_rad": [0.0],
        "cos_rad": [[0.0]],
        "sin_rad": [[0.0]],
    }
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="hip_adduction_rotation"):
        load_normative_gait(path)


@pytest.mark.needs_data
def test_fit_script_reproduces_the_shipped_coefficients(tmp_path):
    out = tmp_path / "gait.json"
    result = run_script("fit_normative_gait", "--out", str(out))
    assert result.returncode == 0, result.stderr
    fitted = json.loads(out.read_text())
    shipped = json.loads(DEFAULT_PATH.read_text())
    for key in ("mean_rad", "cos_rad", "sin_rad"):
        np.testing.assert_allclose(fitted[key], shipped[key], atol=1e-12)
        np.testing.assert_allclose(
            fitted["hip_adduction_rotation"][key],
            shipped["hip_adduction_rotation"][key],
            atol=1e-12,
        )


def test_fit_script_bad_input_is_one_line(tmp_path):
    bad = tmp_path / "bad.mot"
    bad.write_text("no header here\n")
    result = run_script("fit_normative_gait", "--mot", str(bad), "--out", str(tmp_path / "x.json"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "endheader" in result.stderr


def test_motion_file_reader_reports_missing_columns(tmp_path):
    path = tmp_path / "m.mot"
    path.write_text("x\ninDegrees=yes\nendheader\ntime\thip_flexion_r\n0\t10\n0.01\t11\n")
    with pytest.raises(MotionFileError, match="knee_angle_r"):
        read_joint_angles(path, JOINT_NAMES)
    time_s, q = read_joint_angles(path, ("hip_flexion_r",))
    np.testing.assert_allclose(time_s, [0.0, 0.01])
    np.testing.assert_allclose(q[:, 0], np.deg2rad([10, 11]))
