"""train.export: bundles from a network or a RUN directory, the train-export CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from calib import default_subject
from calib.coordinates import COORDINATES, PAPER_MUSCLES
from edge.bundle import BUNDLE_FILES, MANIFEST_FILE, load_bundle, sha256_file
from edge.tensorrt_cache import tensorrt_available
from train.cli.export import main
from train.export import (
    ACTIVATION_BOUNDS,
    ExportError,
    check_bundle_parity,
    export_bundle,
)
from train.model import ModelConfig, build_model
from train.run import save_run

MEAN = np.array([0.1, 0.0, 0.0, -0.4, 0.0, 0.0, 0.05, 0.0, 0.0])
STD = np.array([0.3, 2.0, 20.0, 0.4, 4.0, 60.0, 0.15, 2.0, 40.0])


def _small_model(seed: int = 0, lookahead: int = 1) -> torch.nn.Module:
    torch.manual_seed(seed)
    config = ModelConfig(
        n_muscles=len(default_subject().muscles),
        architecture="mjca_bigru",
        window=12,
        lookahead=lookahead,
        joint_dim=8,
        heads=2,
        integrated_dim=16,
        gru_hidden=16,
        head_dims=(16,),
    )
    return build_model(config, MEAN, STD).eval()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    metrics = {"r2": {"psoas_r": 0.8}, "loss": 0.12}
    directory = tmp_path_factory.mktemp("run") / "run"
    return save_run(directory, _small_model(), default_subject(), 60.0, {"epochs": 1}, metrics)


@pytest.mark.slow
def test_manifest_describes_the_network_and_hashes_every_file(tmp_path):
    model = _small_model()
    bundle = export_bundle(model, tmp_path / "b", metrics={"r2_mean": np.float64(0.7)})
    manifest = json.loads((tmp_path / "b" / MANIFEST_FILE).read_text())
    assert manifest["window"] == 12 and manifest["lookahead"] == 1
    assert manifest["sample_rate_hz"] == 100.0
    assert manifest["architecture"] == model.config.to_dict()
    np.testing.assert_allclose(manifest["input_mean"], MEAN, rtol=1e-6)
    np.testing.assert_allclose(manifest["input_std"], STD, rtol=1e-6)
    n_muscles = len(default_subject().muscles)
    assert manifest["output_range"] == [list(ACTIVATION_BOUNDS)] * n_muscles
    assert manifest["input_coordinates"] == ["hip_flexion", "knee_angle", "ankle_angle"]
    assert manifest["balanced_coordinates"] == list(COORDINATES)
    # the paper's ten in the subject's order are reported by default
    assert sorted(manifest["report_muscles"]) == sorted(PAPER_MUSCLES)
    order = [default_subject().muscle_names.index(m) for m in manifest["report_muscles"]]
    assert order == sorted(order)
    assert manifest["metrics"] == {"r2_mean": 0.7}
    assert set(manifest["files"]) == set(BUNDLE_FILES)
    for name, digest in manifest["files"].items():
        assert sha256_file(tmp_path / "b" / name) == digest
    assert manifest["created"].endswith("+00:00")
    assert bundle.manifest.lookahead_s == pytest.approx(0.01)


@pytest.mark.slow
def test_export_from_a_run_directory_takes_its_rate_metrics_and_subject(run_dir, tmp_path):
    bundle = export_bundle(run_dir, tmp_path / "b")
    assert bundle.manifest.sample_rate_hz == 60.0
    assert bundle.manifest.metrics["r2"] == {"psoas_r": 0.8}
    assert bundle.subject.muscle_names == default_subject().muscle_names


@pytest.mark.slow
def test_parity_check_catches_a_different_network(tmp_path):
    bundle = export_bundle(_small_model(seed=1), tmp_path / "b")
    errors = check_bundle_parity(_small_model(seed=1), bundle)
    assert max(errors.values()) <= 1e-5
    with pytest.raises(ExportError, match=r"differs from eager PyTorch"):
        check_bundle_parity(_small_model(seed=2), bundle)


@pytest.mark.slow
def test_reexport_replaces_a_bundle_but_never_clobbers_other_directories(tmp_path):
    export_bundle(_small_model(seed=1), tmp_path / "b")
    first = load_bundle(tmp_path / "b").digest
    second = export_bundle(_small_model(seed=3), tmp_path / "b").digest
    assert first != second
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match=r"not empty and not a bundle"):
        export_bundle(_small_model(), tmp_path / "other")


def test_subject_must_match_the_network(tmp_path):
    subject = default_subject()
    import dataclasses

    fewer = dataclasses.replace(subject, muscles=subject.muscles[:4])
    n = len(subject.muscles)
    with pytest.raises(ExportError, match=rf"answers {n} muscles but the subject has 4"):
        export_bundle(_small_model(), tmp_path / "b", subject=fewer)


@pytest.mark.slow
def test_cli_exports_a_run(run_dir, tmp_path, capsys):
    assert main([str(run_dir), "-o", str(tmp_path / "b")]) == 0
    assert "agree with eager" in capsys.readouterr().out
    assert load_bundle(tmp_path / "b").manifest.window == 12


@pytest.mark.slow
def test_cli_bad_input_is_one_line_and_nonzero(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "train.export",
            str(tmp_path / "missing"),
            "-o",
            str(tmp_path / "b"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("train-export: error: ") and result.stderr.count("\n") == 1


def test_cli_fp16_needs_tensorrt(run_dir, tmp_path, capsys):
    assert main([str(run_dir), "-o", str(tmp_path / "b"), "--fp16"]) == 2
    assert capsys.readouterr().err == "train-export: error: --fp16 applies to --tensorrt only\n"


def test_cli_tensorrt_says_why_it_cannot_run_here(run_dir, tmp_path, capsys):
    usable, reason = tensorrt_available()
    if usable:
        pytest.skip("CUDA and torch-tensorrt are present: scripts/check_tensorrt.py covers them")
    assert main([str(run_dir), "-o", str(tmp_path / "b"), "--tensorrt"]) == 2
    assert capsys.readouterr().err.startswith(
        f"train-export: error: TensorRT is unavailable: {' '.join(reason.split())}"
    )
