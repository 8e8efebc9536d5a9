"""train-id and the five-coordinate physics against OpenSim's own tools on subject01 walk1.

Needs the opensim package (optional extra) and ../shared/data; skips, saying why, without
them. The subject is imported once from subject01's scaled model (about a minute).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.paths import GAIT2392 as DATA

from calib.coordinates import COORDINATES, PAPER_MUSCLES
from train.cli.id import main
from train.opensim_io import read_storage

pytestmark = pytest.mark.slow  # the module fixture imports subject01 from its OpenSim model

TRIAL = {
    "ik": DATA / "subject01_walk1_ik.mot",
    "grf": DATA / "subject01_walk1_grf.mot",
    "loads": DATA / "subject01_walk1_grf.xml",
}


@pytest.fixture(scope="module")
def opensim(gait2392):
    osim = pytest.importorskip("opensim", reason="the opensim package (optional extra) is absent")
    osim.Logger.setLevelString("error")
    return osim


@pytest.fixture(scope="module")
def subject01_file(opensim, tmp_path_factory):
    from calib.cli import main as calib_subject

    path = tmp_path_factory.mktemp("subject01") / "subject.json"
    model = DATA / "subject01_simbody_adjusted.osim"
    assert calib_subject(["--osim", str(model), "-o", str(path), "--quiet"]) == 0
    return path


@pytest.fixture(scope="module")
def opensim_moments(opensim, tmp_path_factory):
    """OpenSim's InverseDynamicsTool on the trial (scaled model, 6 Hz, muscles excluded)."""
    out = tmp_path_factory.mktemp("opensim_id")
    loads = opensim.ExternalLoads(str(TRIAL["loads"]), True)
    loads.setDataFileName(str(TRIAL["grf"]))
    loads.printToXML(str(out / "loads.xml"))
    tool = opensim.InverseDynamicsTool()
    model = opensim.Model(str(DATA / "subject01_simbody_adjusted.osim"))  # the tool borrows it
    tool.setModel(model)
    tool.setCoordinatesFileName(str(TRIAL["ik"]))
    tool.setExternalLoadsFileName(str(out / "loads.xml"))
    tool.setLowpassCutoffFrequency(6.0)
    tool.setStartTime(0.5)
    tool.setEndTime(2.5)
    excluded = opensim.ArrayStr()
    excluded.append("Muscles")
    tool.setExcludedForces(excluded)
    tool.setResultsDir(str(out))
    tool.setOutputGenForceFileName("id.sto")
    tool.run()
    return read_storage(out / "id.sto")


def _trial_args(subject: Path) -> list[str]:
    return [
        "--ik", str(TRIAL["ik"]), "--grf", str(TRIAL["grf"]), "--loads", str(TRIAL["loads"]),
        "--subject", str(subject),
    ]  # fmt: skip


@pytest.mark.parametrize("side", ["r", "l"])
def test_train_id_is_within_a_tenth_of_each_peak_of_opensims_inverse_dynamics(
    subject01_file, opensim_moments, tmp_path, capsys, side
):
    out = tmp_path / "id.sto"
    assert main([*_trial_args(subject01_file), "--side", side, "-o", str(out)]) == 0
    assert (
        "balancing hip flexion, adduction and rotation, knee and ankle" in capsys.readouterr().out
    )
    ours = read_storage(out)
    columns = [f"{c}_{side}_moment" for c in COORDINATES]
    assert ours.columns == tuple(columns)
    scored = (opensim_moments.time >= 0.55) & (opensim_moments.time <= 2.5)
    t = opensim_moments.time[scored]
    for column in columns:
        reference = opensim_moments.column(column)[scored]
        mine = np.interp(t, ours.time, ours.column(column))
        peak = np.abs(reference).max()
        rms = np.sqrt(np.mean((mine - reference) ** 2))
        assert rms < 0.1 * peak, f"{column}: RMS {rms:.2f} N m against a peak of {peak:.1f} N m"


def test_train_id_sagittal_writes_three_moments_and_bad_input_is_one_line(
    subject01_file, tmp_path, capsys
):
    out = tmp_path / "id.sto"
    assert main([*_trial_args(subject01_file), "--sagittal", "-o", str(out)]) == 0
    assert read_storage(out).columns == (
        "hip_flexion_r_moment",
        "knee_angle_r_moment",
        "ankle_angle_r_moment",
    )
    capsys.readouterr()
    assert main([*_trial_args(tmp_path / "missing.json"), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("train-id: error:")


def test_five_coordinate_so_reaches_opensims_static_optimisation(subject01_file):
    from calib import load_subject
    from train.metrics import align, score
    from train.static_optimization import static_optimization
    from train.trial import load_trial

    subject = load_subject(subject01_file)
    trial = load_trial(TRIAL["ik"], TRIAL["grf"], TRIAL["loads"], subject)
    result = static_optimization(subject, trial, start_s=0.55, end_s=2.5)
    columns = [subject.muscle_names.index(m) for m in PAPER_MUSCLES]
    scores = {}
    for what, values, file in (
        ("activation", result.activation, "activation"),
        ("force", result.active_force, "force"),
    ):
        reference = read_storage(DATA / "so" / f"subject01_walk1_ik_StaticOptimization_{file}.sto")
        aligned = align(
            reference.time, reference.columns_of(list(PAPER_MUSCLES)), result.time,
            values[:, columns], PAPER_MUSCLES, 0.55, 2.5,
        )  # fmt: skip
        scores[what] = score(aligned).mean_r2
    assert scores["activation"] >= 0.94 and scores["force"] >= 0.94, scores
