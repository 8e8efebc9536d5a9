"""calib-subject: each mode end to end, and bad input as one line and exit 2 (a failure of
the program: tests/firmware_bridge/test_bridge_command_line.py)."""

import subprocess
import sys

import numpy as np
import pytest
from helpers.paths import REPO

from calib import COORDINATES, PAPER_MUSCLES, load_sensors, load_subject
from calib.cli import main


def test_height_mass_writes_a_valid_subject(tmp_path, capsys):
    out = tmp_path / "subject.json"
    assert (
        main(["--height", "1.65", "--mass", "60", "--strength", "vas_lat_r=0.7", "-o", str(out)])
        == 0
    )
    subject = load_subject(out)
    assert subject.body.height == 1.65 and subject.body.mass == 60.0
    assert len(subject.muscles) == 43
    assert subject.coordinates == COORDINATES
    assert subject.muscles[subject.muscle_names.index("vas_lat_r")].strength_scale == 0.7
    assert "wrote" in capsys.readouterr().out


def test_muscles_all_paper_and_a_list(tmp_path):
    out = tmp_path / "s.json"
    assert main(["--height", "1.8", "--mass", "80", "--muscles", "all", "-o", str(out)]) == 0
    assert len(load_subject(out).muscles) == 43
    assert main(["--height", "1.8", "--mass", "80", "--muscles", "paper", "-o", str(out)]) == 0
    assert load_subject(out).muscle_names == PAPER_MUSCLES
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
        (["--height", "1.8", "--mass", "-2"], 2, "mass -2 is outside"),
        (["--height", "1.8", "--mass", "70", "--muscles", "nope_r"], 2, "unknown muscle"),
        (["--height", "1.8", "--mass", "70", "--muscles", ","], 2, "'all', 'paper' or"),
        (["--height", "1.8", "--mass", "70", "--strength", "psoas_r=-1"], 2, "NAME=SCALE"),
        (["--height", "1.8"], 2, "--height H --mass M"),
        (["--osim", "/no/such/model.osim"], 2, "not found"),
        (["--zero", "/no/such/capture.csv"], 2, "cannot read capture"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, argv, code, message):
    assert _exit_code([*argv, "-o", str(tmp_path / "x.json")]) == code
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("calib-subject: error:")


def test_an_output_that_cannot_be_written_is_one_line_naming_it(tmp_path, capsys):
    out = tmp_path / "no such folder" / "subject.json"
    assert main(["--height", "1.8", "--mass", "70", "-o", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"calib-subject: error: {out}: No such file or directory"
    ]


def test_zero_writes_sensors_and_refuses_motion(tmp_path, capsys):
    rng = np.random.default_rng(3)
    still = tmp_path / "still.csv"
    rows = np.array([0.1, -0.2, 0.05]) + rng.normal(0, 0.002, (100, 3))
    still.write_text("hip,knee,ankle\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    out = tmp_path / "sensors.json"
    assert main(["--zero", str(still), "-o", str(out)]) == 0
    np.testing.assert_allclose(
        [c.zero_offset for c in load_sensors(out).channels], rows.mean(axis=0)
    )
    assert "knee->knee_angle" in capsys.readouterr().out
    again = tmp_path / "again.json"
    assert main(["--zero", str(still), "--sensors-in", str(out), "-o", str(again)]) == 0
    moving = tmp_path / "moving.csv"
    rows[:, 1] += np.linspace(0.0, 0.5, 100)
    moving.write_text("hip,knee,ankle\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    capsys.readouterr()
    assert main(["--zero", str(moving), "-o", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert "knee" in err and "std" in err and "deg" in err


@pytest.mark.slow
def test_osim_import_prints_the_error_table(subject01_model, tmp_path, capsys):
    pytest.importorskip("opensim", reason="the opensim extra (official bindings) is not installed")
    model = subject01_model
    out = tmp_path / "s01.json"
    assert main(["--osim", str(model), "--muscles", "soleus_r", "--quiet", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "soleus_r" in text and "hip_add" in text and "estimated from the leg length" in text
    assert "OpenSim evaluation and fitting took" in text
    subject = load_subject(out)
    assert subject.muscle_names == ("soleus_r",)
    assert subject.muscles[0].path.crosses == ("ankle_angle",)
    assert 1.5 < subject.body.height < 2.2
    capsys.readouterr()
    assert (
        _exit_code(["--osim", str(model), "--muscles", "psoas_r", "--mass", "70", "-o", str(out)])
        == 2
    )
    assert "--osim reads the model's mass" in capsys.readouterr().err


def test_console_script_help():
    # The module the console script runs, from this checkout (an installed calib-subject may
    # be another checkout's).
    result = subprocess.run(
        [sys.executable, "-m", "calib.cli", "--help"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 0
    for text in ("--height", "--zero", "Jaric", "hip_adduction", "--muscles paper", "-110..10"):
        assert text in result.stdout, text
