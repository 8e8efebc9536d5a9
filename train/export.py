"""Export a trained network as a portable bundle (edge/bundle.py describes the layout).

``export_bundle(model_or_run_dir, out_dir, ...)`` writes ``model.pt2`` (a
``torch.export`` ExportedProgram, batch 1, fixed window, exported on the CPU with
cuDNN disabled: on torch <= 2.8, the Jetson's, exporting an ``nn.GRU`` on CUDA
with cuDNN fails inside ``flatten_parameters``), ``model.onnx`` (the same
function through the dynamo ONNX exporter, from the program rewritten by
``edge.gru_rewrite.last_step_gru`` so that the last GRU layer computes only the
step the head reads: ~16 % faster under ONNX Runtime, same outputs),
``subject.json`` and last
``manifest.json`` with the SHA-256 of each file, so an interrupted export never
leaves a bundle that loads. Before returning it loads the bundle back through
edge/ and checks that eager PyTorch, the ExportedProgram and ONNX Runtime agree
to ``PARITY_TOLERANCE`` on random windows.

``train-export RUN -o BUNDLE/ [--tensorrt [--fp16]]`` does the same from a
training run directory; with ``--tensorrt`` (a CUDA machine with torch-tensorrt)
it also records the TensorRT settings in the manifest and compiles the engine
once into the local cache, checking parity (see edge/tensorrt_cache.py).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from calib import Subject, default_subject
from calib.coordinates import ACTIVATION_MAX, ACTIVATION_MIN, COORDINATES, PAPER_MUSCLES
from edge.bundle import (
    BUNDLE_FILES,
    MANIFEST_FILE,
    ONNX_FILE,
    ONNX_INPUT_NAME,
    ONNX_OUTPUT_NAME,
    PROGRAM_FILE,
    SCHEMA_VERSION,
    SUBJECT_FILE,
    Bundle,
    load_bundle,
    package_version,
    sha256_file,
)
from edge.derivatives import DERIVATIVE_TAPS
from edge.gru_rewrite import last_step_gru
from edge.tensorrt_cache import TensorRTSettings

DEFAULT_SAMPLE_RATE_HZ = 100.0
ACTIVATION_BOUNDS = (ACTIVATION_MIN, ACTIVATION_MAX)
"""The activation bounds of the bound loss (eq. 22): the default output range."""
PARITY_TOLERANCE = 1e-5
"""Largest absolute activation difference allowed between eager, ExportedProgram and ONNX."""
PARITY_WINDOWS = 8
ONNX_OPSET = 18


class ExportError(RuntimeError):
    """The network could not be exported faithfully; the message says why."""


def export_bundle(
    source: nn.Module | str | Path,
    out_dir: str | Path,
    *,
    subject: Subject | None = None,
    sample_rate_hz: float | None = None,
    metrics: Mapping[str, Any] | None = None,
    output_range: Sequence[tuple[float, float]] | None = None,
    tensorrt: TensorRTSettings | None = None,
    balanced_coordinates: Sequence[str] | None = None,
    report_muscles: Sequence[str] | None = None,
) -> Bundle:
    """Write a bundle to ``out_dir`` and return it, loaded and validated.

    source: a network from ``train.model.build_model`` (its ``config`` gives the
    window, lookahead and architecture; its normalisation buffers the input
    statistics) or a training run directory (``train.run.load_run``), which also
    supplies the subject, sample rate and metrics. Keyword arguments override
    what a run provides; for a bare network ``subject`` defaults to
    ``calib.default_subject()`` and ``sample_rate_hz`` to 100 Hz.
    output_range: (lo, hi) activations per muscle; defaults to the bound loss's
    ``ACTIVATION_BOUNDS`` for every muscle.
    tensorrt: settings recorded in the manifest for the device's first start.
    balanced_coordinates: the coordinates whose moments the muscles were trained to
    balance (a run records them; default the subject's five).
    report_muscles: the muscles the runtime reports by default: the paper's ten where
    the subject models them (``calib.coordinates.PAPER_MUSCLES``), else all.
    """
    if isinstance(source, (str, Path)):
        model, run_subject, run_rate, run_metrics = _load_run(Path(source))
        subject = subject or run_subject
        sample_rate_hz = sample_rate_hz or run_rate
        metrics = run_metrics if metrics is None else metrics
        balanced_coordinates = balanced_coordinates or run_metrics.get("balanced_coordinates")
    else:
        model = source
    subject = subject or default_subject()
    sample_rate_hz = float(sample_rate_hz or DEFAULT_SAMPLE_RATE_HZ)
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "window"):
        raise ExportError(
            "the network has no `config` (ModelConfig): build it with train.model.build_model"
        )
    if config.n_muscles != len(subject.muscles):
        raise ExportError(
            f"the network answers {config.n_muscles} muscles but the subject has "
            f"{len(subject.muscles)} ({', '.join(subject.muscle_names)}): export with the "
            f"subject it was trained with"
        )
    ranges = _output_range(output_range, config.n_muscles)
    balanced = list(balanced_coordinates or COORDINATES)
    report = list(report_muscles or default_report_muscles(subject.muscle_names))
    unknown = [name for name in report if name not in subject.muscle_names]
    if unknown:
        raise ExportError(f"report muscles {unknown} are not among the subject's muscles")
    out = _prepare_directory(Path(out_dir))

    cpu_model = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
    example = _example_windows(cpu_model, config.window, 1)
    program = _export_program(cpu_model, example)
    torch.export.save(program, out / PROGRAM_FILE)
    export_onnx(_onnx_program(program), example, out / ONNX_FILE)
    subject.save(out / SUBJECT_FILE)

    manifest = {
        "schema_version": SCHEMA_VERSION,
        "package_version": package_version(),
        "muscles": list(subject.muscle_names),
        "joints": list(subject.coordinates),
        "window": int(config.window),
        "sample_rate_hz": sample_rate_hz,
        "lookahead": int(config.lookahead),
        "derivative_taps": DERIVATIVE_TAPS,
        "input_features": list(config.input_features),
        "input_coordinates": list(config.input_coordinates),
        "balanced_coordinates": balanced,
        "report_muscles": report,
        "input_mean": _buffer(cpu_model, "normalize.mean"),
        "input_std": _buffer(cpu_model, "normalize.std"),
        "output_range": [list(r) for r in ranges],
        "architecture": config.to_dict(),
        "metrics": _json_safe(dict(metrics or {})),
        "files": {name: sha256_file(out / name) for name in BUNDLE_FILES},
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "exporter": {"torch": torch.__version__, "onnx_opset": ONNX_OPSET},
    }
    if tensorrt is not None:
        manifest["tensorrt"] = tensorrt.to_dict()
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")

    bundle = load_bundle(out)
    check_bundle_parity(cpu_model, bundle)
    return bundle


def default_report_muscles(muscles: Sequence[str]) -> tuple[str, ...]:
    """The paper's ten muscles where the subject models them, in the subject's order; all
    muscles when it models none of them."""
    paper = [name for name in muscles if name in PAPER_MUSCLES]
    return tuple(paper or muscles)


def check_bundle_parity(
    model: nn.Module, bundle: Bundle, windows: np.ndarray | None = None
) -> dict[str, float]:
    """Max |difference| of the ExportedProgram and ONNX Runtime against eager ``model``.

    windows: (N, W, 9) raw features; defaults to ``PARITY_WINDOWS`` random windows
    around the network's input statistics. Raises ``ExportError`` above
    ``PARITY_TOLERANCE``.
    """
    from edge.backends import OnnxRuntimeBackend, TorchProgramBackend

    if windows is None:
        windows = _example_windows(model, bundle.manifest.window, PARITY_WINDOWS).numpy()
    with torch.inference_mode():
        eager = model(torch.from_numpy(np.ascontiguousarray(windows, np.float32))).numpy()
    errors = {}
    for backend in (TorchProgramBackend(bundle), OnnxRuntimeBackend(bundle)):
        got = np.stack([backend.infer(w[None].astype(np.float32)) for w in windows])
        errors[backend.name] = float(np.max(np.abs(got - eager)))
    worst = max(errors, key=errors.__getitem__)
    if errors[worst] > PARITY_TOLERANCE:
        raise ExportError(
            f"the {worst} form of the network differs from eager PyTorch by "
            f"{errors[worst]:.2e} (tolerance {PARITY_TOLERANCE:.0e}): the export is not faithful"
        )
    return errors


def _load_run(run_dir: Path) -> tuple[nn.Module, Subject, float | None, Mapping[str, Any]]:
    from train.run import load_run

    run = load_run(run_dir)
    return run.model, run.subject, run.sample_rate_hz, run.metrics


def _prepare_directory(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a directory: choose another -o")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST_FILE).is_file():
        raise ExportError(
            f"{out} is not empty and not a bundle: choose an empty or new directory for -o"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST_FILE).unlink(missing_ok=True)
    return out


def _example_windows(model: nn.Module, window: int, n: int) -> torch.Tensor:
    """Random raw feature windows spread like the training data (seeded)."""
    generator = torch.Generator().manual_seed(0)
    mean = model.get_buffer("normalize.mean").detach().cpu()
    std = model.get_buffer("normalize.std").detach().cpu()
    noise = torch.randn(n, window, mean.numel(), generator=generator)
    return (mean + std * noise).to(torch.float32)


def _export_program(model: nn.Module, example: torch.Tensor) -> torch.export.ExportedProgram:
    try:
        with warnings.catch_warnings(), torch.no_grad(), torch.backends.cudnn.flags(enabled=False):
            # nn.GRU re-caches its weight list while traced; the weights are parameters.
            warnings.filterwarnings("ignore", message=".*_flat_weights.*assigned during export")
            return torch.export.export(model, (example,))
    except Exception as exc:
        raise ExportError(
            f"torch.export failed on this network: {type(exc).__name__}: {exc}"
        ) from exc


def _onnx_program(program: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    """The program the ONNX file is made from: last-step GRU where the network allows it."""
    try:
        return last_step_gru(program)
    except ValueError:  # the GRU output is read at more than one step: keep it whole
        return program


def export_onnx(program: torch.export.ExportedProgram, example: torch.Tensor, path: Path) -> None:
    """Write ``program`` as one self-contained ONNX file (input "x", output "activation")."""
    onnx_log = logging.getLogger("torch.onnx")
    previous_level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)  # it warns about optional torchvision ops we never use
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                program,
                (example,),
                str(path),
                dynamo=True,
                input_names=[ONNX_INPUT_NAME],
                output_names=[ONNX_OUTPUT_NAME],
                opset_version=ONNX_OPSET,
                external_data=False,
                verbose=False,
            )
    except Exception as exc:
        raise ExportError(f"ONNX export failed: {type(exc).__name__}: {exc}") from exc
    finally:
        onnx_log.setLevel(previous_level)


def _buffer(model: nn.Module, name: str) -> list[float]:
    return [float(v) for v in model.get_buffer(name).detach().cpu().reshape(-1)]


def _output_range(
    output_range: Sequence[tuple[float, float]] | None, n_muscles: int
) -> list[tuple[float, float]]:
    if output_range is None:
        return [ACTIVATION_BOUNDS] * n_muscles
    ranges = [(float(lo), float(hi)) for lo, hi in output_range]
    if len(ranges) != n_muscles or any(lo > hi for lo, hi in ranges):
        raise ExportError(
            f"output_range needs one (lo, hi) pair with lo <= hi per muscle ({n_muscles})"
        )
    return ranges


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


if __name__ == "__main__":  # python -m train.export: the same command as train.cli.export
    from train.cli.export import main

    raise SystemExit(main())
