"""train-predict: windows exactly as the runtime builds them, lookahead, storages written."""

import numpy as np
import pytest
import torch
from helpers.paths import GAIT2392 as DATA

from calib import default_subject
from calib.coordinates import SAGITTAL_INDEX
from edge.derivatives import DERIVATIVE_TAPS
from edge.window import WindowSpec, offline_window
from train.cli.predict import main
from train.model import ModelConfig, build_model
from train.opensim_io import read_storage
from train.predict import (
    PredictionError,
    predict,
    predictor_from_bundle,
    predictor_from_model,
    predictor_from_run,
    write_prediction,
)
from train.run import save_run

RATE_HZ = 100.0


def small_model(n_muscles: int, lookahead: int = 0, seed: int = 0):
    torch.manual_seed(seed)
    config = ModelConfig(
        n_muscles=n_muscles,
        window=20,
        lookahead=lookahead,
        joint_dim=8,
        heads=2,
        integrated_dim=16,
        gru_hidden=8,
        gru_layers=1,
        gru_dropout=0.0,
        head_dims=(16,),
    )
    return build_model(config)


def gait_like_angles(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Times (n,) s and a pose (n, 5) rad of all five coordinates."""
    t = 0.5 + np.arange(n) / RATE_HZ
    phase = 2 * np.pi * t / 1.2
    q = np.column_stack(
        [
            0.3 * np.sin(phase),
            0.05 * np.sin(phase + 0.4),
            0.08 * np.sin(phase + 1.1),
            -0.6 + 0.5 * np.sin(phase + 1.0),
            0.1 * np.sin(2 * phase),
        ]
    )
    return t, q


@pytest.mark.parametrize("lookahead", [0, 3])
def test_each_row_is_the_runtime_window_answering_sample_j_minus_lookahead(lookahead):
    subject = default_subject()
    model = small_model(len(subject.muscles), lookahead)
    predictor = predictor_from_model(model, subject, 20, RATE_HZ, lookahead, batch_size=7)
    t, q = gait_like_angles(80)
    prediction = predict(predictor, t, q)

    first_end = 20 + DERIVATIVE_TAPS - 2  # newest grid sample of the first full window
    assert prediction.activation.shape == (80 - first_end, len(subject.muscles))
    np.testing.assert_allclose(prediction.time, t[first_end - lookahead : 80 - lookahead])
    spec = WindowSpec(window=20, rate_hz=RATE_HZ, lookahead=lookahead)
    for j in (first_end, 50, 79):  # windows ending at grid sample j, built as edge/ builds them
        x = offline_window(t, q[:, list(SAGITTAL_INDEX)], t[j], spec)
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).double().numpy()[0]
        row = j - first_end
        np.testing.assert_allclose(prediction.activation[row], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(prediction.q[row], q[j - lookahead])


def test_forces_are_consistent_with_activations():
    subject = default_subject()
    predictor = predictor_from_model(small_model(len(subject.muscles)), subject, 20, RATE_HZ, 0)
    t, q = gait_like_angles(60)
    prediction = predict(predictor, t, q)
    assert np.all(prediction.active_force >= 0)
    assert np.all(prediction.force >= prediction.active_force - 1e-9)  # + passive >= 0
    zero = prediction.activation <= 0
    np.testing.assert_array_equal(prediction.active_force[zero], 0.0)  # clipped at 0


def test_too_short_a_recording_is_refused():
    subject = default_subject()
    predictor = predictor_from_model(small_model(len(subject.muscles)), subject, 20, RATE_HZ, 0)
    t, q = gait_like_angles(10)
    with pytest.raises(PredictionError, match="fewer than one window"):
        predict(predictor, t, q)


def test_written_storages_read_back_with_muscle_columns(tmp_path):
    subject = default_subject()
    predictor = predictor_from_model(small_model(len(subject.muscles)), subject, 20, RATE_HZ, 0)
    t, q = gait_like_angles(60)
    prediction = predict(predictor, t, q)
    paths = write_prediction(tmp_path / "p", prediction, subject.muscle_names)
    assert [p.name for p in paths] == ["p_activation.sto", "p_force.sto", "p_active_force.sto"]
    for path, expected in zip(
        paths, (prediction.activation, prediction.force, prediction.active_force)
    ):
        storage = read_storage(path)
        assert storage.columns == subject.muscle_names
        assert storage.time.size == prediction.time.size
        np.testing.assert_allclose(storage.data, expected, rtol=1e-12, atol=1e-9)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    subject = default_subject()
    directory = tmp_path_factory.mktemp("run")
    save_run(directory, small_model(len(subject.muscles), seed=1), subject, RATE_HZ, {}, {})
    return directory


def test_cli_on_a_run_and_the_real_ik(subject01_ik, trained_run, tmp_path, capsys):
    ik = subject01_ik
    prefix = tmp_path / "pred"
    assert main([str(trained_run), "--ik", str(ik), "-o", str(prefix)]) == 0
    assert "wrote" in capsys.readouterr().out
    activation = read_storage(f"{prefix}_activation.sto")
    ik_storage = read_storage(ik)
    n_grid = int(np.floor((ik_storage.time[-1] - ik_storage.time[0]) * RATE_HZ + 1e-6)) + 1
    assert activation.time.size == n_grid - (20 + DERIVATIVE_TAPS - 2)
    assert activation.columns == default_subject().muscle_names
    assert activation.time[0] == pytest.approx(ik_storage.time[0] + 23 / RATE_HZ)
    for suffix in ("force", "active_force"):
        assert read_storage(f"{prefix}_{suffix}.sto").data.shape == activation.data.shape


def test_cli_with_grf_uses_the_trial_span(subject01_ik, trained_run, tmp_path):
    ik = subject01_ik
    prefix = tmp_path / "pred"
    rc = main(
        [
            str(trained_run), "--ik", str(ik),
            "--grf", str(DATA / "subject01_walk1_grf.mot"),
            "--loads", str(DATA / "subject01_walk1_grf.xml"),
            "-o", str(prefix),
        ]
    )  # fmt: skip
    assert rc == 0
    activation = read_storage(f"{prefix}_activation.sto")
    assert activation.time[-1] <= 2.5 + 1e-9  # the GRF file ends at 2.5 s


@pytest.mark.slow
def test_bundle_predicts_what_the_run_predicts(trained_run, tmp_path):
    from train.export import export_bundle

    export_bundle(trained_run, tmp_path / "bundle")
    from_bundle = predictor_from_bundle(tmp_path / "bundle")
    t, q = gait_like_angles(40)
    expected = predict(predictor_from_run(trained_run), t, q)
    got = predict(from_bundle, t, q)
    np.testing.assert_allclose(got.activation, expected.activation, rtol=1e-5, atol=1e-5)


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "nope"), "--ik", "x.mot", "-o", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("train-predict: error:")
