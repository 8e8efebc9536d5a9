"""calib-subject: each mode end to end, and bad input as one line and a non-zero exit."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from calib import load_sensors, load_subject
from calib.cli import main

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "opensim-gait2392"


def test_height_mass_writes_a_valid_subject(tmp_path, capsys):
    out = tmp_path / "subject.json"
    assert (
        main(["--height", "1.65", "--mass", "60", "--strength", "vas_lat_r=0.7", "-o", str(out)])
        == 0
    )
    subject = load_subject(out)
    assert subject.body.height == 1.65 and subject.body.mass == 60.0
    assert len(subject.muscles) == 10
    assert subject.muscles[subject.muscle_names.index("vas_lat_r")].strength_scale == 0.7
    assert "wrote" in capsys.readouterr().out


def test_muscles_all_and_a_list(tmp_path):
    out = tmp_path / "s.json"
    assert main(["--height", "1.8", "--mass", "80", "--muscles", "all", "-o", str(out)]) == 0
    assert len(load_subject(out).muscles) == 43
    assert (
        main(["--height", "1.8", "--mass", "80", "--muscles", "soleus_r,tib_ant_r", "-o", str(out)])
        == 0
    )
    assert load_subject(out).muscle_names == ("soleus_r", "tib_ant_r")


def _exit_code(argv):
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's usage errors
        return exc.code


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--height", "1.8", "--mass", "-2"], 1, "mass -2 is outside"),
        (["--height", "1.8", "--mass", "70", "--muscles", "nope_r"], 1, "unknown muscle"),
        (["--height", "1.8", "--mass", "70", "--strength", "psoas_r=-1"], 2, "NAME=SCALE"),
        (["--height", "1.8"], 2, "--height H --mass M"),
        (["--osim", "/no/such/model.osim"], 1, "not found"),
        (["--zero", "/no/such/capture.csv"], 1, "cannot read capture"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, argv, code, message):
    assert _exit_code(argv + ["-o", str(tmp_path / "x.json")]) == code
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("calib-subject: error:")


def test_zero_writes_sensors_and_refuses_motion(tmp_path, capsys):
    rng = np.random.default_rng(3)
    still = tmp_path / "still.csv"
    rows = [0.1, -0.2, 0.05] + rng.normal(0, 0.002, (100, 3))
    still.write_text("hip,knee,ankle\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    out = tmp_path / "sensors.json"
    assert main(["--zero", str(still), "-o", str(out)]) == 0
    np.testing.assert_allclose(
        [c.zero_offset for c in load_sensors(out).channels], rows.mean(axis=0)
    )
    again = tmp_path / "again.json"
    assert main(["--zero", str(still), "--sensors-in", str(out), "-o", str(again)]) == 0
    moving = tmp_path / "moving.csv"
    rows[:, 1] += np.linspace(0.0, 0.5, 100)
    moving.write_text("hip,knee,ankle\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    capsys.readouterr()
    assert main(["--zero", str(moving), "-o", str(tmp_path / "m.json")]) == 1
    err = capsys.readouterr().err
    assert "knee" in err and "std" in err and "deg" in err


def test_osim_import_prints_the_error_table(tmp_path, capsys):
    pytest.importorskip("opensim", reason="the opensim extra (official bindings) is not installed")
    model = DATA / "subject01_simbody_adjusted.osim"
    if not model.is_file():
        pytest.skip(f"development data absent: {model}")
    out = tmp_path / "s01.json"
    assert main(["--osim", str(model), "--muscles", "psoas_r", "--quiet", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "psoas_r" in text and "len RMS" in text and "estimated from the leg length" in text
    subject = load_subject(out)
    assert subject.muscle_names == ("psoas_r",)
    assert 1.5 < subject.body.height < 2.2


def test_console_script_help():
    exe = shutil.which("calib-subject")
    cmd = [exe] if exe else [sys.executable, "-m", "calib.cli"]
    result = subprocess.run(
        cmd + ["--help"], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "--height" in result.stdout and "--zero" in result.stdout and "Jaric" in result.stdout
