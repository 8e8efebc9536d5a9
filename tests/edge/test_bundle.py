"""Bundle loading: what a good bundle offers and how bad ones are refused."""

from __future__ import annotations

import dataclasses
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from calib import default_subject
from edge.bundle import (
    MANIFEST_FILE,
    ONNX_FILE,
    PROGRAM_FILE,
    SCHEMA_VERSION,
    SUBJECT_FILE,
    BundleError,
    audit_program_archive,
    default_bundle_path,
    load_bundle,
    package_version,
    sha256_file,
)
from edge.derivatives import DERIVATIVE_TAPS, INPUT_FEATURES
from train.export import export_bundle
from train.model import ModelConfig, build_model


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    config = ModelConfig(
        n_muscles=len(default_subject().muscles),
        architecture="bigru",
        gru_hidden=16,
        head_dims=(32,),
    )
    bundle = export_bundle(build_model(config).eval(), tmp_path_factory.mktemp("src") / "bundle")
    return bundle.directory


@pytest.fixture
def bundle_dir(source, tmp_path) -> Path:
    """A private copy of a good bundle, free to damage."""
    return Path(shutil.copytree(source, tmp_path / "bundle"))


def _edit_manifest(directory: Path, **changes) -> None:
    path = directory / MANIFEST_FILE
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _rehash(directory: Path, name: str) -> None:
    data = json.loads((directory / MANIFEST_FILE).read_text())
    data["files"][name] = sha256_file(directory / name)
    (directory / MANIFEST_FILE).write_text(json.dumps(data))


def test_a_good_bundle_loads_with_its_subject_and_program(bundle_dir):
    bundle = load_bundle(bundle_dir)
    subject = default_subject()
    assert bundle.directory == bundle_dir
    assert bundle.manifest.schema_version == SCHEMA_VERSION
    assert bundle.manifest.muscles == subject.muscle_names
    assert bundle.manifest.joints == subject.coordinates
    assert bundle.manifest.input_features == INPUT_FEATURES
    assert bundle.manifest.derivative_taps == DERIVATIVE_TAPS
    assert bundle.subject.muscle_names == subject.muscle_names
    assert bundle.input_shape == (1, bundle.manifest.window, 9)
    assert bundle.digest == sha256_file(bundle_dir / MANIFEST_FILE)
    program = bundle.load_program()
    y = program.module()(torch.zeros(bundle.input_shape))
    assert tuple(y.shape) == (1, len(subject.muscles))


def test_manifest_round_trips_through_its_dict(bundle_dir):
    manifest = load_bundle(bundle_dir).manifest
    assert type(manifest).from_dict(manifest.to_dict()) == manifest


def test_other_schema_version_is_refused_with_what_to_do(bundle_dir):
    _edit_manifest(bundle_dir, schema_version=SCHEMA_VERSION + 1)
    with pytest.raises(
        BundleError, match=rf"schema version {SCHEMA_VERSION + 1} is not supported.*re-export"
    ):
        load_bundle(bundle_dir)


def test_tampered_file_is_refused(bundle_dir):
    with open(bundle_dir / ONNX_FILE, "r+b") as stream:
        stream.seek(200)
        byte = stream.read(1)
        stream.seek(200)
        stream.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(BundleError, match=r"model.onnx does not match its manifest hash"):
        load_bundle(bundle_dir)


def test_missing_file_is_refused(bundle_dir):
    (bundle_dir / PROGRAM_FILE).unlink()
    with pytest.raises(BundleError, match=r"model.pt2 is missing: copy the whole bundle"):
        load_bundle(bundle_dir)


def test_subject_with_other_muscles_is_refused(bundle_dir):
    subject = default_subject()
    swapped = (subject.muscles[1], subject.muscles[0], *subject.muscles[2:])
    dataclasses.replace(subject, muscles=swapped).save(bundle_dir / SUBJECT_FILE)
    _rehash(bundle_dir, SUBJECT_FILE)
    with pytest.raises(BundleError, match=r"does not belong to this network"):
        load_bundle(bundle_dir)


def test_other_package_major_version_is_refused(bundle_dir):
    major = int(package_version().split(".")[0])
    _edit_manifest(bundle_dir, package_version=f"{major + 1}.0.0")
    with pytest.raises(BundleError, match=r"major versions differ; re-export"):
        load_bundle(bundle_dir)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"window": "20"}, r"window must be an integer >= 1"),
        ({"lookahead": 99}, r"lookahead 99 must be below the window"),
        ({"sample_rate_hz": 0}, r"sample_rate_hz must be a positive number"),
        ({"derivative_taps": DERIVATIVE_TAPS + 2}, r"derivative stencils"),
        ({"input_features": list(reversed(INPUT_FEATURES))}, r"input_features .* differ"),
        ({"input_std": [1.0] * 8}, r"input_std must be a list of 9 finite numbers"),
        ({"output_range": [[0, 1]]}, r"output_range must hold one \[lo, hi\] pair"),
        ({"files": {"model.pt2": "abc"}}, r"must be a hex SHA-256"),
        ({"muscles": ["a", "a"]}, r"muscles must be a non-empty list of distinct names"),
    ],
)
def test_malformed_manifest_fields_are_named(bundle_dir, changes, message):
    _edit_manifest(bundle_dir, **changes)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle_dir)


def test_missing_manifest_key_is_named(bundle_dir):
    data = json.loads((bundle_dir / MANIFEST_FILE).read_text())
    del data["input_mean"]
    (bundle_dir / MANIFEST_FILE).write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"lacks input_mean"):
        load_bundle(bundle_dir)


def test_not_a_bundle_is_refused(tmp_path):
    with pytest.raises(BundleError, match=r"does not exist: export one with"):
        load_bundle(tmp_path / "nowhere")
    with pytest.raises(BundleError, match=r"is not a bundle"):
        load_bundle(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(BundleError, match=r"is not valid JSON"):
        load_bundle(tmp_path)


def _rewrite_archive(path: Path, edit) -> None:
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    edit(entries)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


def test_pickled_weights_in_the_program_are_refused(bundle_dir):
    def mark_pickled(entries):
        name = next(n for n in entries if n.endswith("data/weights/model_weights_config.json"))
        config = json.loads(entries[name])
        first = next(iter(config["config"]))
        config["config"][first]["use_pickle"] = True
        entries[name] = json.dumps(config).encode()

    _rewrite_archive(bundle_dir / PROGRAM_FILE, mark_pickled)
    _rehash(bundle_dir, PROGRAM_FILE)
    bundle = load_bundle(bundle_dir)
    with pytest.raises(BundleError, match=r"stored as a pickled object"):
        bundle.load_program()


def test_unexpected_archive_members_are_refused(bundle_dir):
    def add_extra(entries):
        root = next(iter(entries)).split("/", 1)[0]
        entries[f"{root}/extra/payload.pkl"] = b"\x80\x04N."

    _rewrite_archive(bundle_dir / PROGRAM_FILE, add_extra)
    with pytest.raises(BundleError, match=r"a plain torch.export.save never writes"):
        audit_program_archive(bundle_dir / PROGRAM_FILE)


def test_the_audit_accepts_what_torch_export_writes(source):
    audit_program_archive(source / PROGRAM_FILE)


def test_default_bundle_lives_in_the_package():
    path = default_bundle_path()
    assert path.name == "default_bundle"
    assert path.parent == Path(__import__("edge").__file__).resolve().parent
    if (path / MANIFEST_FILE).is_file():
        bundle = load_bundle(path)
        assert np.isfinite(bundle.manifest.input_std).all()
