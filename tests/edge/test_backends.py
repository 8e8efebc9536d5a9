"""Inference backends: parity with eager PyTorch on random and real windows, selection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edge.backends import (
    BACKEND_NAMES,
    Backend,
    BackendError,
    OnnxRuntimeBackend,
    TorchProgramBackend,
    create_backend,
    select_backend,
)
from edge.derivatives import history_length, network_inputs, resample_uniform
from edge.tensorrt_cache import tensorrt_available
from train.export import export_bundle
from train.model import ARCHITECTURES, ModelConfig, build_model

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "opensim-gait2392"
IK_FILE = DATA / "subject01_walk1_ik.mot"
TOLERANCE = 1e-5
RATE_HZ = 100.0
# Spread like real gait features (rad, rad/s, rad/s^2) so the inputs exercise
# the normalisation and the nonlinearities, not just the zero neighbourhood.
INPUT_MEAN = np.array([0.2, 0.0, 0.0, -0.5, 0.0, 0.0, 0.0, 0.0, 0.0])
INPUT_STD = np.array([0.3, 2.0, 20.0, 0.4, 4.0, 60.0, 0.15, 2.0, 40.0])


def _trained_like(architecture: str, lookahead: int) -> torch.nn.Module:
    """An untrained network with perturbed weights (nothing special about zeros or defaults)."""
    torch.manual_seed(ARCHITECTURES.index(architecture))
    model = build_model(
        ModelConfig(architecture=architecture, lookahead=lookahead), INPUT_MEAN, INPUT_STD
    )
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model.eval()


@pytest.fixture(scope="module", params=ARCHITECTURES)
def exported(request, tmp_path_factory):
    lookahead = 2 if request.param == "mjca_bigru" else 0
    model = _trained_like(request.param, lookahead)
    bundle = export_bundle(model, tmp_path_factory.mktemp(request.param) / "bundle")
    return model, bundle


def _random_windows(n: int, window: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    return (INPUT_MEAN + INPUT_STD * rng.standard_normal((n, window, 9))).astype(np.float32)


def _real_windows(window: int, stride: int = 7) -> np.ndarray:
    """Windows of the subject01 walking trial, built exactly as the runtime builds them."""
    if not IK_FILE.is_file():
        pytest.skip(f"real trial absent: {IK_FILE} (../shared/data is not here)")
    from train.opensim_io import read_storage

    storage = read_storage(IK_FILE)
    q = storage.angles_radians(["hip_flexion_r", "knee_angle_r", "ankle_angle_r"])
    t = storage.time
    history = history_length(window)
    windows = []
    t_end = t[0] + (history - 1) / RATE_HZ
    while t_end <= t[-1]:
        grid = resample_uniform(t, q, t_end, RATE_HZ, history)
        windows.append(network_inputs(grid, RATE_HZ))
        t_end += stride / RATE_HZ
    return np.asarray(windows, dtype=np.float32)


def _eager(model: torch.nn.Module, windows: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(windows)).numpy()


@pytest.mark.parametrize("backend_class", [TorchProgramBackend, OnnxRuntimeBackend])
def test_backends_match_eager_on_random_windows(exported, backend_class):
    model, bundle = exported
    windows = _random_windows(16, bundle.manifest.window)
    backend = backend_class(bundle)
    got = np.stack([backend.infer(w[None]) for w in windows])
    expected = _eager(model, windows)
    assert got.dtype == np.float32 and got.shape == (16, bundle.manifest.n_muscles)
    assert np.ptp(expected, axis=0).min() > 1e-3, "windows must produce varied activations"
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("backend_class", [TorchProgramBackend, OnnxRuntimeBackend])
def test_backends_match_eager_on_the_real_trial(exported, backend_class):
    model, bundle = exported
    windows = _real_windows(bundle.manifest.window)
    assert len(windows) > 30
    backend = backend_class(bundle)
    got = np.stack([backend.infer(np.ascontiguousarray(w[None])) for w in windows])
    np.testing.assert_allclose(got, _eager(model, windows), rtol=0, atol=TOLERANCE)


def test_infer_writes_into_a_caller_buffer_and_keeps_no_state(exported):
    _, bundle = exported
    backend = OnnxRuntimeBackend(bundle)
    a, b = _random_windows(2, bundle.manifest.window)
    out = np.full(bundle.manifest.n_muscles, np.nan, dtype=np.float32)
    first = backend.infer(a[None]).copy()
    backend.infer(b[None])
    returned = backend.infer(a[None], out)
    assert returned is out
    np.testing.assert_array_equal(out, first)


@pytest.mark.parametrize("name", ["onnxruntime", "torch"])
def test_wrong_input_is_refused_with_the_expected_shape(exported, name):
    _, bundle = exported
    backend = create_backend(bundle, name)
    window = bundle.manifest.window
    with pytest.raises(BackendError, match=rf"\(1, {window}, 9\)"):
        backend.infer(np.zeros((1, window + 1, 9), dtype=np.float32))
    with pytest.raises(BackendError, match="float32"):
        backend.infer(np.zeros((1, window, 9), dtype=np.float64))


def test_auto_selects_a_working_backend_and_says_what_it_skipped(exported):
    model, bundle = exported
    notes: list[str] = []
    backend = select_backend(bundle, "auto", threads=1, notes=notes)
    assert isinstance(backend, Backend)
    usable, _ = tensorrt_available()
    assert backend.name == ("tensorrt" if usable else "onnxruntime")
    if not usable:
        assert any(note.startswith("tensorrt skipped") for note in notes)
    backend.warmup(3)
    window = _random_windows(1, bundle.manifest.window)
    np.testing.assert_allclose(
        backend.infer(window), _eager(model, window)[0], rtol=0, atol=TOLERANCE
    )


def test_unknown_backend_names_the_choices(exported):
    _, bundle = exported
    with pytest.raises(BackendError, match="onnxruntime") as info:
        select_backend(bundle, "tvm")
    assert all(name in str(info.value) for name in BACKEND_NAMES)


def test_tensorrt_backend_explains_why_it_cannot_run(exported):
    _, bundle = exported
    usable, reason = tensorrt_available()
    if usable:
        pytest.skip("CUDA and torch-tensorrt are present: tests/edge/test_tensorrt covers them")
    with pytest.raises(BackendError, match="tensorrt backend cannot run here"):
        select_backend(bundle, "tensorrt")
    assert reason
