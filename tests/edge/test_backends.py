"""Inference backends: parity with eager PyTorch on random and real windows, selection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.scripts import run_script

from calib import default_subject
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
from edge.gru_rewrite import OPAQUE_GRU, count_gru_nodes, explicit_gru, gru_at_step, last_step_gru
from edge.tensorrt_cache import (
    GRU_HANDLING,
    PRECISIONS,
    TensorRTError,
    TensorRTSettings,
    cache_key,
    compile_options_accepted,
    engine_directory,
    fp16_options,
    load_or_build,
    prepare_program,
    tensorrt_available,
    to_device,
    variants,
)
from train.export import export_bundle
from train.model import ARCHITECTURES, ModelConfig, build_model

TOLERANCE = 1e-5
RATE_HZ = 100.0
# Spread like real gait features (rad, rad/s, rad/s^2) so the inputs exercise
# the normalisation and the nonlinearities, not just the zero neighbourhood.
INPUT_MEAN = np.array([0.2, 0.0, 0.0, -0.5, 0.0, 0.0, 0.0, 0.0, 0.0])
INPUT_STD = np.array([0.3, 2.0, 20.0, 0.4, 4.0, 60.0, 0.15, 2.0, 40.0])


def _trained_like(architecture: str, lookahead: int) -> torch.nn.Module:
    """An untrained network with perturbed weights (nothing special about zeros or defaults)."""
    torch.manual_seed(ARCHITECTURES.index(architecture))
    n_muscles = len(default_subject().muscles)
    model = build_model(
        ModelConfig(n_muscles=n_muscles, architecture=architecture, lookahead=lookahead),
        INPUT_MEAN,
        INPUT_STD,
    )
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
        # mid-range outputs, so that no muscle sits at a clamp bound and every one varies
        last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
        last.bias.add_(0.4)
        last.weight.mul_(5.0)
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


def _real_windows(ik: Path, window: int, stride: int = 7) -> np.ndarray:
    """Windows of the subject01 walking trial, built exactly as the runtime builds them."""
    from train.opensim_io import read_storage

    storage = read_storage(ik)
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


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.parametrize("backend_class", [TorchProgramBackend, OnnxRuntimeBackend])
def test_backends_match_eager_on_the_real_trial(subject01_ik, exported, backend_class):
    model, bundle = exported
    windows = _real_windows(subject01_ik, bundle.manifest.window)
    assert len(windows) > 30
    backend = backend_class(bundle)
    got = np.stack([backend.infer(np.ascontiguousarray(w[None])) for w in windows])
    np.testing.assert_allclose(got, _eager(model, windows), rtol=0, atol=TOLERANCE)


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.parametrize("name", ["onnxruntime", "torch"])
def test_wrong_input_is_refused_with_the_expected_shape(exported, name):
    _, bundle = exported
    backend = create_backend(bundle, name)
    window = bundle.manifest.window
    with pytest.raises(BackendError, match=rf"\(1, {window}, 9\)"):
        backend.infer(np.zeros((1, window + 1, 9), dtype=np.float32))
    with pytest.raises(BackendError, match="float32"):
        backend.infer(np.zeros((1, window, 9), dtype=np.float64))


@pytest.mark.slow
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


@pytest.mark.slow
def test_unknown_backend_names_the_choices(exported):
    _, bundle = exported
    with pytest.raises(BackendError, match="onnxruntime") as info:
        select_backend(bundle, "tvm")
    assert all(name in str(info.value) for name in BACKEND_NAMES)


@pytest.mark.slow
def test_tensorrt_backend_explains_why_it_cannot_run(exported):
    _, bundle = exported
    usable, reason = tensorrt_available()
    if usable:
        pytest.skip(
            "CUDA and torch-tensorrt are present: scripts/check_tensorrt.py and"
            " test_tensorrt_engine_matches_pytorch_and_is_cached cover them"
        )
    with pytest.raises(BackendError, match="tensorrt backend cannot run here"):
        select_backend(bundle, "tensorrt")
    assert reason


# TensorRT: what a CPU can check (graph rewrites, settings, cache keys); the rest needs CUDA.


@pytest.fixture(scope="module")
def small_program():
    """A small MJCA-BiGRU and its ExportedProgram: the GRU rewrites do not depend on size."""
    torch.manual_seed(5)
    config = ModelConfig(
        joint_dim=8, integrated_dim=16, gru_hidden=16, head_dims=(16,), lookahead=1
    )
    model = build_model(config, INPUT_MEAN, INPUT_STD).eval()
    example = torch.from_numpy(_random_windows(1, config.window))
    return model, torch.export.export(model, (example,))


@pytest.mark.slow
@pytest.mark.parametrize("gru", GRU_HANDLING)
def test_tensorrt_gru_handlings_keep_the_network_exact_on_the_cpu(small_program, gru):
    model, program = small_program
    prepared = prepare_program(program, gru)
    assert count_gru_nodes(prepared) == 0
    if gru == "torch":  # the GRU stays whole through every decomposition a compiler may run
        assert count_gru_nodes(prepared.run_decompositions(), OPAQUE_GRU) == 1
    windows = _random_windows(1, model.config.window)
    with torch.inference_mode():
        got = prepared.module()(torch.from_numpy(windows)).numpy()
    np.testing.assert_allclose(got, _eager(model, windows), rtol=0, atol=TOLERANCE)


def test_explicit_gru_equals_torch_gru_in_every_configuration():
    torch.manual_seed(3)
    for layers, bidirectional, batch_first, bias in [
        (1, False, True, True),
        (2, True, True, True),
        (2, True, False, False),
    ]:
        gru = torch.nn.GRU(
            5, 7, layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional
        ).eval()
        x = torch.randn(2, 6, 5) if batch_first else torch.randn(6, 2, 5)
        h0 = torch.randn(layers * (2 if bidirectional else 1), 2, 7)
        expected, expected_h = gru(x, h0)
        got, got_h = explicit_gru(
            x, h0, list(gru._flat_weights), bias, layers, 0.0, False, bidirectional, batch_first
        )
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
        torch.testing.assert_close(got_h, expected_h, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("layers", "bidirectional", "batch_first", "step"),
    [(2, True, True, 5), (2, True, True, 0), (1, True, False, 3), (3, False, True, 4)],
)
def test_gru_at_step_equals_the_full_gru_read_at_that_step(
    layers, bidirectional, batch_first, step
):
    torch.manual_seed(layers + step)
    gru = torch.nn.GRU(5, 7, layers, batch_first=batch_first, bidirectional=bidirectional).eval()
    x = torch.randn(2, 6, 5) if batch_first else torch.randn(6, 2, 5)
    h0 = torch.randn(layers * (2 if bidirectional else 1), 2, 7)
    full, _ = gru(x, h0)
    expected = full[:, step] if batch_first else full[step]
    got = gru_at_step(
        x, h0, list(gru._flat_weights), True, layers, 0.0, False, bidirectional, batch_first, step
    )
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_last_step_rewrite_keeps_the_network_and_refuses_a_gru_read_whole(small_program):
    model, program = small_program
    rewritten = last_step_gru(program)
    assert count_gru_nodes(rewritten) == 3  # layer 1 whole, layer 2 forward, layer 2 backward
    windows = _random_windows(1, model.config.window)
    with torch.inference_mode():
        got = rewritten.module()(torch.from_numpy(windows)).numpy()
    np.testing.assert_allclose(got, _eager(model, windows), rtol=0, atol=TOLERANCE)

    class WholeSequence(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = torch.nn.GRU(3, 4, batch_first=True)

        def forward(self, x):
            return self.gru(x)[0].sum(dim=1)

    whole = torch.export.export(WholeSequence().eval(), (torch.randn(1, 5, 3),))
    with pytest.raises(ValueError, match="no GRU in this program is read at a single time step"):
        last_step_gru(whole)


def test_tensorrt_settings_validate_and_round_trip():
    settings = TensorRTSettings(precision="fp16", gru="cell_loop", cuda_graphs=True)
    assert TensorRTSettings.from_dict(settings.to_dict()) == settings
    assert settings.tolerance > TensorRTSettings().tolerance
    with pytest.raises(ValueError, match="precision must be one of"):
        TensorRTSettings(precision="int8")
    with pytest.raises(ValueError, match="gru must be one of"):
        TensorRTSettings(gru="cudnn")
    with pytest.raises(ValueError, match="unknown TensorRT settings"):
        TensorRTSettings.from_dict({"precison": "fp16"})
    labels = [v.label for v in variants()]
    assert len(labels) == len(set(labels)) == len(PRECISIONS) * len(GRU_HANDLING) * 2


def test_tensorrt_cache_key_changes_with_everything_an_engine_depends_on(tmp_path):
    environment = {
        "gpu": "Orin",
        "compute_capability": "8.7",
        "tensorrt": "10.3.0",
        "torch_tensorrt": "2.8.0",
        "torch": "2.8.0",
    }
    base = cache_key("a" * 64, TensorRTSettings(), environment)
    assert base == cache_key("a" * 64, TensorRTSettings(), dict(environment))
    changed = {
        cache_key("b" * 64, TensorRTSettings(), environment),
        cache_key("a" * 64, TensorRTSettings(precision="fp16"), environment),
        cache_key("a" * 64, TensorRTSettings(cuda_graphs=True), environment),
        *(
            cache_key("a" * 64, TensorRTSettings(), {**environment, key: "other"})
            for key in environment
        ),
    }
    assert base not in changed and len(changed) == 3 + len(environment)
    directory = engine_directory(tmp_path, "a" * 64, TensorRTSettings(), environment)
    assert directory.parent == tmp_path and "fp32-unrolled" in directory.name


@pytest.mark.slow
@pytest.mark.parametrize("gru", GRU_HANDLING)
def test_prepared_programs_move_to_another_device_whole(small_program, gru):
    model, program = small_program
    moved = to_device(prepare_program(program, gru), "meta", None)
    assert {str(v.device) for v in moved.state_dict.values()} == {"meta"}
    y = moved.module()(torch.zeros((1, model.config.window, 9), device="meta"))
    assert y.device.type == "meta" and tuple(y.shape) == (1, model.config.n_muscles)


def test_compile_options_are_read_from_the_compile_signature():
    def explicit(program, *, arg_inputs=None, enabled_precisions=None):
        return program

    def open_ended(program, **kwargs):
        return program

    explicit_options = compile_options_accepted(explicit)
    assert "enabled_precisions" in explicit_options
    assert "enable_autocast" not in explicit_options
    assert "enable_autocast" in compile_options_accepted(open_ended)


def test_fp16_is_asked_for_the_way_each_torch_tensorrt_release_understands():
    jetson = fp16_options("2.8.0", {"enabled_precisions": None})
    assert jetson == {"enabled_precisions": {torch.float32, torch.float16}}
    later = fp16_options("2.13.0", {"enabled_precisions": None, "enable_autocast": None})
    assert later["enable_autocast"] and later["low_precision_type"] == torch.float16
    with pytest.raises(TensorRTError, match="use precision fp32"):
        fp16_options("2.14.0", {"enabled_precisions": None})


@pytest.mark.slow
@pytest.mark.gpu
@pytest.mark.skipif(not tensorrt_available()[0], reason=tensorrt_available()[1])
def test_tensorrt_engine_matches_pytorch_and_is_cached(exported, tmp_path):
    model, bundle = exported
    settings = TensorRTSettings()
    built = create_backend(bundle, "tensorrt", cache_dir=tmp_path)
    assert not built.report.from_cache
    windows = _random_windows(4, bundle.manifest.window)
    got = np.stack([built.infer(w[None]) for w in windows])
    np.testing.assert_allclose(got, _eager(model, windows), rtol=0, atol=settings.tolerance)
    _, again = load_or_build(bundle, settings, tmp_path)
    assert again.from_cache


@pytest.mark.slow
def test_check_script_says_skipped_where_tensorrt_cannot_run():
    usable, reason = tensorrt_available()
    if usable:
        pytest.skip("CUDA and torch-tensorrt are present: run scripts/check_tensorrt.py itself")
    result = run_script("check_tensorrt", timeout=120)
    assert result.returncode == 0
    assert result.stdout.strip() == f"check_tensorrt: SKIPPED: {reason}"
