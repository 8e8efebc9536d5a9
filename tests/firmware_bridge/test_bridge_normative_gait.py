"""The shipped gait cycle: reproducible from the real trial, close to it, periodic, plausible."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.motion_file import MotionFileError, read_joint_angles
from firmware_bridge.normative_gait import DEFAULT_PATH, JOINT_NAMES, load_normative_gait

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
IK = DATA / "opensim-gait2392" / "subject01_walk1_ik.mot"


def need_data():
    if not IK.exists():
        pytest.skip(f"shared development data absent ({IK})")


def test_shipped_cycle_is_periodic_with_the_real_period():
    gait = load_normative_gait()
    assert gait.joint_names == JOINT_NAMES
    assert gait.period_s == pytest.approx(1.853 - 0.618)
    np.testing.assert_allclose(gait.angles_at_phase([0.0, 0.37]), gait.angles_at_phase([1.0, 2.37]),
                               atol=1e-12)
    np.testing.assert_allclose(gait.angles_at_time([0.5], period_s=1.0),
                               gait.angles_at_phase([0.5]))


def test_shipped_cycle_follows_opensim_conventions():
    q = np.rad2deg(load_normative_gait().angles_at_phase(np.linspace(0, 1, 201)))
    hip, knee, ankle = q.T
    assert hip[0] > 10 and hip.min() < -10  # flexed at heel strike, extended before toe-off
    assert knee.max() < 3 and knee.min() < -55  # knee is negative in flexion, ~ -65 deg in swing
    assert np.argmin(knee) > 120  # the deepest knee flexion falls in swing (phase > 0.6)
    assert -20 < ankle.min() and ankle.max() < 25


def test_cycle_matches_the_real_trial_within_half_a_degree():
    need_data()
    gait = load_normative_gait()
    time_s, angles = read_joint_angles(IK, JOINT_NAMES)
    inside = (time_s >= 0.618) & (time_s <= 1.853)
    model = gait.angles_at_time(time_s[inside] - 0.618)
    rms_deg = np.rad2deg(np.sqrt(np.mean((model - angles[inside]) ** 2, axis=0)))
    assert np.all(rms_deg < 0.5), rms_deg


def test_fit_script_reproduces_the_shipped_coefficients(tmp_path):
    need_data()
    out = tmp_path / "gait.json"
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "fit_normative_gait.py"),
                             "--out", str(out)], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    fitted = json.loads(out.read_text())
    shipped = json.loads(DEFAULT_PATH.read_text())
    for key in ("mean_rad", "cos_rad", "sin_rad"):
        np.testing.assert_allclose(fitted[key], shipped[key], atol=1e-12)


def test_fit_script_bad_input_is_one_line(tmp_path):
    bad = tmp_path / "bad.mot"
    bad.write_text("no header here\n")
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "fit_normative_gait.py"),
                             "--mot", str(bad), "--out", str(tmp_path / "x.json")],
                            check=False, capture_output=True, text=True)
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
