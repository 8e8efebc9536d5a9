"""Wrong data caught before it trains or scores, and scores a researcher can trust on the
shared trial and on a second trial built here (a time-warped copy, the other leg held out).

Every refusal is one line naming the file or value and the fix; nothing is written.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers.paths import DEFAULT_SUBJECT_FILE as SUBJECT
from helpers.paths import GAIT2392 as DATA
from helpers.training import TINY

from train.cli import evaluate as eval_cli
from train.cli import fit as fit_cli
from train.cli import predict as predict_cli
from train.data_checks import DataError, Overlap, check_duration, check_span, read_ik
from train.metrics import r_squared
from train.opensim_io import StorageError, read_storage, write_storage

SO = DATA / "so"


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_overlap_line_says_what_is_kept_and_dropped():
    overlap = Overlap("a/walk_ik.mot", (0.5, 4.0), "a/walk_grf.mot", (0.0, 1.0))
    assert overlap.kept == (0.5, 1.0) and overlap.duration_s == pytest.approx(0.5)
    assert overlap.describe("22 windows") == (
        "IK walk_ik.mot 0.500-4.000 s, GRF walk_grf.mot 0.000-1.000 s: kept 0.500-1.000 s, "
        "dropped IK 1.000-4.000 s, GRF 0.000-0.500 s; 22 windows"
    )
    same = Overlap("ik.mot", (0.0, 2.0), "grf.mot", (0.0, 2.0))
    assert "nothing dropped" in same.describe()


def test_duration_and_span_refusals_name_the_value_and_the_limit():
    with pytest.raises(
        DataError,
        match=r"trial x is 0\.180 s long \(19 samples at 100 Hz\), "
        r"shorter than one window needs: 24 samples \(0\.230 s\)",
    ):
        check_duration("trial x", 0.18, 100.0, 24, "one window")
    check_duration("trial x", 0.23, 100.0, 24, "one window")
    with pytest.raises(
        DataError,
        match=r"--end 3\.5 s is outside the data: the trial covers "
        r"0\.500-2\.500 s; give --end between",
    ):
        check_span(0.5, 3.5, (0.5, 2.5), "the trial")
    with pytest.raises(DataError, match=r"--start 0\.2 s is outside"):
        check_span(0.2, None, (0.5, 2.5), "the trial")
    with pytest.raises(DataError, match="not before"):
        check_span(2.0, 1.0, (0.5, 2.5), "the trial")
    check_span(0.5, 2.4999985, (0.5, 2.4999985), "the trial")


def radians_labelled_degrees(tmp_path) -> Path:
    """The shared IK with its angles converted to radians but the header left at degrees."""
    ik = read_storage(DATA / "subject01_walk1_ik.mot")
    angular = ("_r", "_l", "tilt", "list", "rotation", "bending")
    rotational = [i for i, c in enumerate(ik.columns) if c.endswith(angular)]
    data = ik.data.copy()
    data[:, rotational] = np.deg2rad(data[:, rotational])
    return write_storage(tmp_path / "radians_ik.mot", ik.time, ik.columns, data, in_degrees=True)


@pytest.mark.needs_data
def test_units_that_contradict_the_header_are_refused(tmp_path):
    path = radians_labelled_degrees(tmp_path)
    columns = ["hip_flexion_r", "knee_angle_r", "ankle_angle_r"]
    with pytest.raises(DataError) as info:
        read_ik(path, columns)
    message = str(info.value)
    assert str(path) in message and "these are radians" in message
    assert "--angles-in radians" in message and "knee_angle_r" in message
    assert not read_ik(path, columns, angles_in_degrees=False).in_degrees
    # small degrees under a radians header: within a turn (read_storage's own limit), but
    # the knee spans more than half a turn
    ik = read_storage(DATA / "subject01_walk1_ik.mot")
    lying = write_storage(tmp_path / "lying.mot", ik.time, ik.columns, 0.07 * ik.data)
    with pytest.raises(DataError, match=r"knee_angle_r spans 4.* these are degrees.*--angles-in"):
        read_ik(lying, columns)
    with pytest.raises(StorageError, match="--angles-in degrees"):
        read_ik(write_storage(tmp_path / "plain.mot", ik.time, ik.columns, ik.data), columns)
    assert read_ik(DATA / "subject01_walk1_ik.mot", columns).in_degrees


def trial_args(ik: Path, grf: Path = DATA / "subject01_walk1_grf.mot") -> list[str]:
    return ["--ik", str(ik), "--grf", str(grf), "--loads", str(DATA / "subject01_walk1_grf.xml")]


@pytest.mark.needs_data
def test_every_command_refuses_radians_under_a_degrees_header(tmp_path, capsys):
    path = radians_labelled_degrees(tmp_path)
    out = tmp_path / "run"
    fit_args = [*trial_args(path), "--subject", str(SUBJECT), "--out", str(out), "--no-progress"]
    assert fit_cli.main(fit_args) == 2
    line = one_error_line(capsys)
    assert line.startswith("train-fit: error:") and "--angles-in radians" in line
    assert not out.exists()
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"model": TINY}))
    assert fit_cli.main([*fit_args, "--angles-in", "radians", "--epochs", "1",
                         "--config", str(config)]) == 0  # fmt: skip
    capsys.readouterr()
    assert predict_cli.main([str(out), "--ik", str(path), "-o", str(tmp_path / "p")]) == 2
    assert "--angles-in radians" in one_error_line(capsys)
    assert not list(tmp_path.glob("p_*"))
    labels = SO / "subject01_walk1_ik_StaticOptimization_activation.sto"
    assert eval_cli.main([str(out), "--ik", str(path), "--labels", str(labels)]) == 2
    assert "--angles-in radians" in one_error_line(capsys)
    assert eval_cli.main([str(out), "--ik", str(path), "--labels", str(labels),
                          "--angles-in", "radians"]) == 0  # fmt: skip


@pytest.mark.needs_data
def test_a_trial_too_short_for_a_window_is_refused_with_its_length(tmp_path, capsys):
    grf = read_storage(DATA / "subject01_walk1_grf.mot")
    keep = grf.time <= 0.68
    short = write_storage(tmp_path / "short_grf.mot", grf.time[keep], grf.columns, grf.data[keep])
    out = tmp_path / "run"
    args = [*trial_args(DATA / "subject01_walk1_ik.mot", short), "--subject", str(SUBJECT),
            "--out", str(out)]  # fmt: skip
    assert fit_cli.main(args) == 2
    line = one_error_line(capsys)
    assert "0.180 s long (19 samples at 100 Hz)" in line and "24 samples" in line
    assert not out.exists()


def time_warped_trial(tmp_path, factor: float = 1.15) -> dict[str, Path]:
    """A second trial: the shared one slowed down by ``factor`` (IK, GRF and OpenSim's
    labels on a stretched time axis starting where the original starts)."""
    paths = {}
    for name, source in (
        ("ik", DATA / "subject01_walk1_ik.mot"),
        ("grf", DATA / "subject01_walk1_grf.mot"),
        ("labels", SO / "subject01_walk1_ik_StaticOptimization_activation.sto"),
    ):
        storage = read_storage(source)
        time = 0.5 + factor * (storage.time - 0.5)
        paths[name] = write_storage(
            tmp_path / f"warped_{name}{source.suffix}",
            time,
            storage.columns,
            storage.data,
            in_degrees=storage.in_degrees,
        )
    return paths  # fmt: skip


def all_scores_finite_or_null(data) -> int:
    """Walk a JSON document: every number finite (NaN or infinity fail); returns how many."""
    if isinstance(data, dict):
        return sum(all_scores_finite_or_null(v) for v in data.values())
    if isinstance(data, list):
        return sum(all_scores_finite_or_null(v) for v in data)
    if isinstance(data, float | int) and not isinstance(data, bool):
        assert math.isfinite(data)
        return 1
    return 0


@pytest.mark.slow
@pytest.mark.needs_data
def test_held_out_recipe_right_leg_trains_left_leg_and_another_trial_score(tmp_path, capsys):
    """The recipe in the README: train on the right legs of the shared trial, score the left
    leg (OpenSim's _l columns) and a second, time-warped trial; no score is NaN or infinite."""
    run = tmp_path / "run"
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"model": TINY}))
    assert fit_cli.main([*trial_args(DATA / "subject01_walk1_ik.mot"), "--subject", str(SUBJECT),
                         "--out", str(run), "--legs", "right", "--epochs", "3",
                         "--config", str(config), "--no-progress"]) == 0  # fmt: skip
    trials = json.loads((run / "metrics.json").read_text())["trials"]
    assert trials and all(":r:" in t for t in trials)
    labels = SO / "subject01_walk1_ik_StaticOptimization_activation.sto"
    forces = SO / "subject01_walk1_ik_StaticOptimization_force.sto"
    left = tmp_path / "left.json"
    assert eval_cli.main([str(run), "--ik", str(DATA / "subject01_walk1_ik.mot"), "--side", "l",
                          "--labels", str(labels), "--forces", str(forces), "--start", "0.55",
                          "--end", "2.5", "--json", str(left)]) == 0  # fmt: skip
    scored = json.loads(left.read_text())
    assert all_scores_finite_or_null(scored) > 40
    # the left leg was scored against the left muscles: OpenSim's rect_fem_l, not _r
    reference = read_storage(labels)
    assert scored["activation"]["per_muscle"]["rect_fem_r"]["reference_range"] == pytest.approx(
        np.ptp(reference.column("rect_fem_l")[reference.time >= 0.733 - 1e-6]), rel=1e-6
    )
    warped = time_warped_trial(tmp_path)
    other = tmp_path / "warped.json"
    assert eval_cli.main([str(run), "--ik", str(warped["ik"]), "--labels", str(warped["labels"]),
                          "--muscles", "all", "--json", str(other),
                          "--plot", str(tmp_path / "warped.png")]) == 0  # fmt: skip
    assert all_scores_finite_or_null(json.loads(other.read_text())) > 40
    assert (tmp_path / "warped.png").is_file()


@pytest.mark.needs_data
def test_flat_reference_muscles_score_finite_on_the_shared_trial(tmp_path, capsys):
    """OpenSim's 92 activations against themselves plus 0.01: muscles that barely leave the
    0.01 bound have no R^2 (eq. 33 alone gives them hundreds below zero), every other score
    is finite, means say over how many muscles."""
    labels = read_storage(SO / "subject01_walk1_ik_StaticOptimization_activation.sto")
    muscles = [c for c in labels.columns if not c.endswith("reserve") and "FX" not in c
               and "FY" not in c and "FZ" not in c and "MX" not in c and "MY" not in c
               and "MZ" not in c]  # fmt: skip
    write_storage(tmp_path / "est_activation.sto", labels.time, muscles,
                  labels.columns_of(muscles) + 0.01)  # fmt: skip
    out = tmp_path / "scores.json"
    assert eval_cli.main(["--predictions", str(tmp_path / "est"), "--labels", str(labels.path),
                          "--start", "0.55", "--end", "2.5", "--json", str(out)]) == 0  # fmt: skip
    table = capsys.readouterr().out
    scores = json.loads(out.read_text())["activation"]
    flat = [m for m, s in scores["per_muscle"].items() if s["r2"] is None]
    assert "pect_r" in flat and 0 < len(flat) < len(muscles)
    assert all(s["reference_range"] < 0.05 for m, s in scores["per_muscle"].items() if m in flat)
    inside = (labels.time >= 0.55 - 1e-6) & (labels.time <= 2.5 + 1e-6)
    y = labels.columns_of(flat)[inside]
    assert r_squared(y, y + 0.01).min() < -100
    assert scores["mean"]["r2_muscles"] == len(muscles) - len(flat)
    assert scores["mean"]["r2"] > 0.9 and all_scores_finite_or_null(scores) > 3 * len(muscles)
    assert "e+" not in table
