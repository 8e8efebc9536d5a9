"""train-eval: scores of files and of a network against labels, table, JSON and figure."""

import json
import re

import numpy as np
import pytest
from helpers.paths import GAIT2392 as DATA

from calib import default_subject
from train.cli.evaluate import main
from train.model import ModelConfig, build_model
from train.opensim_io import read_storage, write_storage
from train.run import save_run

SO = DATA / "so"
MUSCLES = ("m_a", "m_b")


def write_pair(tmp_path, shift=0.0):
    """Reference at 60 Hz, estimate at 100 Hz over a shorter span, same smooth curves."""
    t_ref = np.arange(0.5, 2.5 + 1e-9, 1 / 60)
    t_est = np.arange(0.6, 2.4 + 1e-9, 1 / 100)

    def curves(t):
        return np.column_stack([0.5 + 0.4 * np.sin(2 * np.pi * t), 0.3 + 0.2 * np.cos(np.pi * t)])

    write_storage(tmp_path / "ref_activation.sto", t_ref, MUSCLES, curves(t_ref))
    write_storage(tmp_path / "ref_force.sto", t_ref, MUSCLES, 1000 * curves(t_ref))
    write_storage(tmp_path / "est_activation.sto", t_est, MUSCLES, curves(t_est) + shift)
    write_storage(tmp_path / "est_active_force.sto", t_est, MUSCLES, 1000 * curves(t_est))
    return tmp_path / "ref_activation.sto", tmp_path / "ref_force.sto", tmp_path / "est"


def test_predictions_mode_scores_files_and_writes_json_and_plot(tmp_path, capsys):
    labels, forces, prefix = write_pair(tmp_path, shift=0.1)
    out_json = tmp_path / "scores.json"
    out_png = tmp_path / "fig.png"
    rc = main(
        [
            "--predictions", str(prefix), "--labels", str(labels), "--forces", str(forces),
            "--start", "0.55", "--end", "2.5", "--json", str(out_json), "--plot", str(out_png),
        ]
    )  # fmt: skip
    assert rc == 0
    table = capsys.readouterr().out
    assert "m_a" in table and "mean" in table
    scores = json.loads(out_json.read_text())
    # the forces match up to interpolation error: R^2 ~ 1
    assert scores["force"]["mean"]["r2"] > 0.999
    # a constant 0.1 offset: NRMSE = 0.1 / range exactly, R^2 = 1 - N 0.01 / sum (y - mean)^2
    act = scores["activation"]["per_muscle"]["m_b"]
    t = np.arange(0.5, 2.5 + 1e-9, 1 / 60)
    t = t[(t >= 0.6 - 1e-9) & (t <= 2.4 + 1e-9)]
    y = 0.3 + 0.2 * np.cos(np.pi * t)
    assert act["nrmse"] == pytest.approx(0.1 / (y.max() - y.min()), rel=1e-3)
    assert act["r2"] == pytest.approx(1 - y.size * 0.01 / np.sum((y - y.mean()) ** 2), rel=1e-3)
    assert scores["activation"]["span_s"][0] >= 0.6 - 1e-9  # the estimate starts at 0.6 s
    assert out_png.stat().st_size > 10_000


def test_missing_muscle_in_labels_is_one_clear_line(tmp_path, capsys):
    _, _, prefix = write_pair(tmp_path)
    t = np.linspace(0.5, 2.5, 50)
    write_storage(tmp_path / "other.sto", t, ("x",), np.sin(t)[:, None])
    rc = main(["--predictions", str(prefix), "--labels", str(tmp_path / "other.sto")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no column for m_a, m_b" in err[0]


def test_run_or_predictions_is_required(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--labels", "x.sto"])
    assert exit_info.value.code == 2


@pytest.fixture(scope="module")
def untrained_run(tmp_path_factory):
    subject = default_subject()
    config = ModelConfig(
        n_muscles=len(subject.muscles), joint_dim=8, integrated_dim=16, gru_hidden=8,
        gru_layers=1, gru_dropout=0.0, head_dims=(16,),
    )  # fmt: skip
    directory = tmp_path_factory.mktemp("run")
    save_run(directory, build_model(config), subject, 100.0, {}, {})
    return directory


def test_run_mode_on_real_data_against_opensim_so(gait2392, untrained_run, tmp_path, capsys):
    out_json = tmp_path / "scores.json"
    rc = main(
        [
            str(untrained_run), "--ik", str(DATA / "subject01_walk1_ik.mot"),
            "--labels", str(SO / "subject01_walk1_ik_StaticOptimization_activation.sto"),
            "--forces", str(SO / "subject01_walk1_ik_StaticOptimization_force.sto"),
            "--start", "0.55", "--end", "2.5", "--json", str(out_json),
        ]
    )  # fmt: skip
    assert rc == 0
    scores = json.loads(out_json.read_text())
    assert set(scores["activation"]["per_muscle"]) == set(default_subject().muscle_names)
    # OpenSim's 60 Hz samples from the network's first answer (23 grid samples after the
    # IK's start at 100 Hz) to 2.5 s
    first_answer = read_storage(DATA / "subject01_walk1_ik.mot").time[0] + 23 / 100.0
    t = read_storage(SO / "subject01_walk1_ik_StaticOptimization_activation.sto").time
    expected = np.count_nonzero((t >= first_answer - 1e-6) & (t <= 2.5 + 1e-6))
    assert scores["activation"]["samples"] == expected
    # an untrained network does not explain OpenSim's activations
    assert scores["activation"]["mean"]["r2"] < 0.5


def test_muscles_option_scores_a_subset_and_refuses_unknown_names(tmp_path, capsys):
    labels, _, prefix = write_pair(tmp_path)
    out_json = tmp_path / "scores.json"
    args = ["--predictions", str(prefix), "--labels", str(labels), "--json", str(out_json)]
    assert main([*args, "--muscles", "m_b"]) == 0
    assert list(json.loads(out_json.read_text())["activation"]["per_muscle"]) == ["m_b"]
    assert main([*args, "--muscles", "m_b,psoas_r"]) == 2
    assert "psoas_r" in capsys.readouterr().err


def test_a_plot_name_matplotlib_cannot_write_is_refused_before_anything_is_written(
    tmp_path, capsys
):
    labels, _, prefix = write_pair(tmp_path)
    out_json = tmp_path / "scores.json"
    args = ["--predictions", str(prefix), "--labels", str(labels), "--json", str(out_json)]
    assert main([*args, "--plot", str(tmp_path / "fig.xyz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write .xyz" in err[0] and ".png" in err[0]
    assert not out_json.exists()


@pytest.mark.slow
def test_many_muscles_plot_in_pages(tmp_path):
    """43 muscles, two quantities: 9 + 9 rows of five panels, four rows to a page."""
    t = np.linspace(0.5, 2.5, 121)
    names = tuple(f"m{i}_r" for i in range(43))
    curves = 0.5 + 0.4 * np.sin(2 * np.pi * t[:, None] + np.arange(43))
    for stem in ("ref_activation", "est_activation"):
        write_storage(tmp_path / f"{stem}.sto", t, names, curves)
    for stem in ("ref_force", "est_active_force"):
        write_storage(tmp_path / f"{stem}.sto", t, names, 900 * curves)
    png = tmp_path / "fig.png"
    assert main(["--predictions", str(tmp_path / "est"), "--labels",
                 str(tmp_path / "ref_activation.sto"), "--forces", str(tmp_path / "ref_force.sto"),
                 "--plot", str(png)]) == 0  # fmt: skip
    pages = sorted(tmp_path.glob("fig*.png"))
    assert [p.name for p in pages] == ["fig.png", "fig_2.png", "fig_3.png", "fig_4.png",
                                       "fig_5.png"]  # fmt: skip
    pdf = tmp_path / "fig.pdf"
    assert main(["--predictions", str(tmp_path / "est"), "--labels",
                 str(tmp_path / "ref_activation.sto"), "--plot", str(pdf)]) == 0  # fmt: skip
    assert len(re.findall(rb"/Type /Page[^s]", pdf.read_bytes())) == 3  # 9 rows, 4 to a page
