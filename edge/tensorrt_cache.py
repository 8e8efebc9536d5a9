"""TensorRT engines for a bundle: compiled once on the device, cached, checked.

A serialized TensorRT engine is tied to the GPU and TensorRT version that built
it, so a bundle carries the portable ExportedProgram and the device compiles it
with torch-tensorrt (dynamo path) at first start. The result is cached under
``~/.cache/mjca-edge/tensorrt`` (or ``cache_dir``) keyed by GPU name and compute
capability, TensorRT, torch-tensorrt and torch versions, the compilation
settings and the bundle's digest; later starts load it in seconds. Every
compilation choice lives in one frozen ``TensorRTSettings`` that is written as
``settings.json`` next to the engine, with the build environment, build time
and the measured parity against PyTorch.

Facts this module handles (torch-tensorrt documentation and issues):
- torch-tensorrt has no converter for ``aten.gru``. ``gru="unrolled"``
  decomposes it into per-step linear/sigmoid/tanh ops (fixed window: fully
  unrolled) and compiles everything in TensorRT; ``gru="torch"`` leaves it to
  PyTorch/cuDNN (two TensorRT engines around a cuDNN GRU): torch-tensorrt
  decomposes composite ops such as ``aten.gru`` before partitioning, so the GRU
  is first wrapped in an opaque custom op (``edge.gru_rewrite.opaque_gru``) and
  that op is listed in ``torch_executed_ops``; ``gru="cell_loop"`` rewrites it
  as an explicit GRU-cell loop with
  the input projection hoisted out of the recurrence (edge/gru_rewrite.py).
- Exporting an ``nn.GRU`` on CUDA with cuDNN enabled fails in
  ``flatten_parameters`` on torch <= 2.8 (JetPack 6.2 ships 2.8): bundles are
  exported on the CPU, and the program is moved to CUDA with
  ``torch.export.passes.move_to_device_pass`` (no tracing on CUDA at all).
- FP16 is requested through ``enabled_precisions`` up to torch-tensorrt 2.12;
  later releases drop TensorRT weak typing for ``use_explicit_typing`` +
  ``enable_autocast`` with ``low_precision_type``: chosen by the installed
  version's signature.
- FP32 engines are built with TF32 disabled, so FP32 parity is tight.
- Users report no TensorRT speed-up for BiGRUs (the GRU takes most of the
  time): nothing here promises one; scripts/check_tensorrt.py measures.

torch_tensorrt and tensorrt are imported lazily: this module imports on any
machine, and ``tensorrt_available()`` says whether the path can run.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle import sha256_file

GRU_HANDLING = ("unrolled", "torch", "cell_loop")
PRECISIONS = ("fp32", "fp16")
PARITY_TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2}
"""Max |activation difference| of an engine against PyTorch on the CPU. FP32 is
tight (different kernels and summation order only); FP16 carries 10-bit
mantissas through two recurrent layers over the window, so it is looser."""

ENGINE_FILE = "engine.ep"
SETTINGS_FILE = "settings.json"
PARITY_WINDOWS = 8


class TensorRTError(RuntimeError):
    """TensorRT cannot be used here or an engine failed its checks; says what to do."""


@dataclass(frozen=True)
class TensorRTSettings:
    """Every choice that shapes a TensorRT engine.

    precision: "fp32" or "fp16" (inputs and outputs stay float32).
    gru: "unrolled" (decomposed, all in TensorRT), "torch" (left to
    PyTorch/cuDNN via torch_executed_ops), "cell_loop" (explicit cell loop,
    input projection hoisted).
    cuda_graphs: replay each call as a CUDA graph (cuts launch overhead).
    workspace_bytes: TensorRT builder workspace limit.
    optimization_level: TensorRT builder optimisation 0-5 (higher builds longer).
    min_block_size: fewest ops in a TensorRT subgraph.
    """

    precision: str = "fp32"
    gru: str = "unrolled"
    cuda_graphs: bool = False
    workspace_bytes: int = 1 << 30
    optimization_level: int = 3
    min_block_size: int = 1

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.gru not in GRU_HANDLING:
            raise ValueError(f"gru must be one of {GRU_HANDLING}, got {self.gru!r}")
        if not isinstance(self.cuda_graphs, bool):
            raise TypeError(f"cuda_graphs must be true or false, got {self.cuda_graphs!r}")
        if int(self.workspace_bytes) <= 0:
            raise ValueError(f"workspace_bytes must be positive, got {self.workspace_bytes}")
        if not 0 <= int(self.optimization_level) <= 5:
            raise ValueError(f"optimization_level must be 0-5, got {self.optimization_level}")
        if int(self.min_block_size) < 1:
            raise ValueError(f"min_block_size must be at least 1, got {self.min_block_size}")

    @property
    def tolerance(self) -> float:
        return PARITY_TOLERANCE[self.precision]

    @property
    def label(self) -> str:
        return f"{self.precision}-{self.gru}-{'graphs' if self.cuda_graphs else 'nographs'}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorRTSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TensorRT settings {unknown}; known: {sorted(known)}")
        return cls(**dict(data))


def variants() -> tuple[TensorRTSettings, ...]:
    """The variants worth comparing on a device (scripts/check_tensorrt.py)."""
    return tuple(
        TensorRTSettings(precision=precision, gru=gru, cuda_graphs=graphs)
        for precision in PRECISIONS
        for gru in GRU_HANDLING
        for graphs in (False, True)
    )


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "mjca-edge" / "tensorrt"


def tensorrt_available() -> tuple[bool, str]:
    """(usable, reason): CUDA and torch-tensorrt both present?"""
    try:
        import torch
    except ImportError:
        return False, (
            "torch is not installed (the device install runs onnxruntime; TensorRT "
            "needs the platform's torch and torch-tensorrt, see docs/jetson.md)"
        )

    if not torch.cuda.is_available():
        return False, "no CUDA device is visible to torch"
    try:
        import torch_tensorrt  # noqa: F401
    except ImportError as exc:
        return False, f"torch-tensorrt is not installed ({exc}); see docs/jetson.md"
    except (OSError, RuntimeError) as exc:  # a broken install: missing or mismatched libraries
        return (
            False,
            f"torch-tensorrt fails to import ({type(exc).__name__}: {exc}); see docs/jetson.md",
        )
    return True, "CUDA and torch-tensorrt are present"


def require_tensorrt() -> None:
    """Raise ``TensorRTError`` with the reason when the TensorRT path cannot run here."""
    usable, reason = tensorrt_available()
    if not usable:
        raise TensorRTError(f"TensorRT is unavailable: {reason}")


def build_environment() -> dict[str, str]:
    """What an engine is tied to: GPU, compute capability, library versions."""
    import torch
    import torch_tensorrt

    try:
        import tensorrt

        tensorrt_version = tensorrt.__version__
    except ImportError:  # bindings outside this environment: torch-tensorrt pins its TensorRT
        tensorrt_version = f"bundled with torch-tensorrt {torch_tensorrt.__version__}"
    major, minor = torch.cuda.get_device_capability()
    return {
        "gpu": torch.cuda.get_device_name(),
        "compute_capability": f"{major}.{minor}",
        "tensorrt": tensorrt_version,
        "torch_tensorrt": torch_tensorrt.__version__,
        "torch": torch.__version__,
    }


def cache_key(
    bundle_digest: str, settings: TensorRTSettings, environment: Mapping[str, str]
) -> str:
    """Hex digest naming one engine: same inputs, same engine."""
    payload = json.dumps(
        {"bundle": bundle_digest, "settings": settings.to_dict(), "environment": dict(environment)},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def engine_directory(
    cache_dir: Path, bundle_digest: str, settings: TensorRTSettings, environment: Mapping[str, str]
) -> Path:
    key = cache_key(bundle_digest, settings, environment)
    return cache_dir / f"{bundle_digest[:12]}-{settings.label}-{key[:16]}"


@dataclass(frozen=True)
class EngineReport:
    """How an engine came to be: from cache or built, where, how long, how exact."""

    settings: TensorRTSettings
    directory: Path
    from_cache: bool
    seconds: float
    parity_max_abs: float
    environment: Mapping[str, str]

    def summary(self) -> str:
        how = "loaded from cache" if self.from_cache else "built"
        return (
            f"TensorRT {self.settings.label}: {how} in {self.seconds:.1f} s at {self.directory}; "
            f"max |difference| vs PyTorch {self.parity_max_abs:.2e} "
            f"(tolerance {self.settings.tolerance:.0e}) on {self.environment.get('gpu')}"
        )


def prepare_program(program: Any, gru: str) -> Any:
    """The CPU program transformed for the GRU handling (CPU-checkable)."""
    from edge.gru_rewrite import decompose_gru, explicit_gru_cells, opaque_gru

    if gru == "unrolled":
        return decompose_gru(program)
    if gru == "cell_loop":
        return explicit_gru_cells(program)
    return opaque_gru(program)


def compile_program(program: Any, input_shape: tuple[int, ...], settings: TensorRTSettings) -> Any:
    """Compile a CPU ExportedProgram into a TensorRT module on the current CUDA device."""
    import torch
    import torch_tensorrt

    example = torch.zeros(input_shape, dtype=torch.float32, device="cuda")
    on_cuda = to_device(prepare_program(program, settings.gru), "cuda", example)
    accepted = compile_options_accepted(torch_tensorrt.dynamo.compile)
    options: dict[str, Any] = {
        "arg_inputs": [example],
        "workspace_size": int(settings.workspace_bytes),
        "optimization_level": int(settings.optimization_level),
        "min_block_size": int(settings.min_block_size),
        "disable_tf32": settings.precision == "fp32",
        "use_python_runtime": False,
    }
    if settings.gru == "torch":
        from edge.gru_rewrite import OPAQUE_GRU

        options["torch_executed_ops"] = {OPAQUE_GRU}
    if settings.precision == "fp16":
        options.update(fp16_options(torch_tensorrt.__version__, accepted))
    for key in [k for k in options if k not in accepted]:
        options.pop(key)  # an option this torch-tensorrt release does not know
    try:
        return torch_tensorrt.dynamo.compile(on_cuda, **options)
    except Exception as exc:
        raise TensorRTError(
            f"torch-tensorrt {torch_tensorrt.__version__} could not compile the bundle with "
            f"{settings.label} ({type(exc).__name__}: {exc}); try another GRU handling "
            f"(TensorRTSettings gru 'torch' or 'cell_loop', docs/jetson.md) or a CPU backend"
        ) from exc


class _AnyOption:
    """Stands for a compile function that takes ``**kwargs``: every option name is accepted."""

    def __contains__(self, name: object) -> bool:
        return True


def compile_options_accepted(compile_function: Any) -> Any:
    """The option names ``compile_function`` accepts (a container answering ``in``)."""
    parameters = inspect.signature(compile_function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return _AnyOption()
    return set(parameters)


def fp16_options(version: str, accepted: Any) -> dict[str, Any]:
    """How this torch-tensorrt release is asked for FP16.

    Up to 2.12 (the Jetson's 2.8 included) through ``enabled_precisions`` (TensorRT
    weak typing); later releases through explicit typing plus rule-based autocast.
    """
    import torch

    release = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    if release <= (2, 12) and "enabled_precisions" in accepted:
        return {"enabled_precisions": {torch.float32, torch.float16}}
    if "enable_autocast" in accepted:
        return {
            "use_explicit_typing": True,
            "enable_autocast": True,
            "low_precision_type": torch.float16,
        }
    raise TensorRTError(
        f"torch-tensorrt {version} offers neither enabled_precisions nor autocast: FP16 is "
        f"not available with it; use precision fp32"
    )


def to_device(program: Any, device: str, example: Any) -> Any:
    """The CPU program on ``device``.

    ``move_to_device_pass`` (torch >= 2.5) rewrites the graph's device arguments
    and moves the weights without tracing anything; older torch re-exports the
    module on the device with cuDNN disabled (the GRU export bug).
    """
    import torch

    try:
        from torch.export.passes import move_to_device_pass
    except ImportError:
        with torch.no_grad(), torch.backends.cudnn.flags(enabled=False):
            return torch.export.export(program.module().to(device), (example,))
    return move_to_device_pass(program, device)


def reference_windows(bundle: Any, n: int = PARITY_WINDOWS) -> np.ndarray:
    """Seeded random raw windows (n, W, 9) around the bundle's input statistics."""
    rng = np.random.default_rng(0)
    mean = np.asarray(bundle.manifest.input_mean, dtype=np.float64)
    std = np.asarray(bundle.manifest.input_std, dtype=np.float64)
    shape = (n, *bundle.input_shape[1:])
    return (mean + std * rng.standard_normal(shape)).astype(np.float32)


def engine_parity(module: Any, program: Any, windows: np.ndarray) -> float:
    """Max |difference| of ``module`` (CUDA) against ``program`` run by PyTorch on the CPU."""
    import torch

    reference = program.module()
    worst = 0.0
    with torch.no_grad():
        for window in windows:
            x = torch.from_numpy(window[None].copy())
            expected = reference(x)
            got = module(x.to("cuda")).float().cpu()
            worst = max(worst, float((got - expected).abs().max()))
    return worst


def build_engine(
    bundle: Any, settings: TensorRTSettings, cache_dir: Path | None = None
) -> EngineReport:
    """Compile (or find in the cache) the engine of ``bundle`` and check its parity."""
    _, report = load_or_build(bundle, settings, cache_dir)
    return report


def load_or_build(
    bundle: Any, settings: TensorRTSettings, cache_dir: Path | None = None
) -> tuple[Any, EngineReport]:
    """(compiled module, report): the cached engine if valid, else a fresh, saved one.

    Raises ``TensorRTError`` when TensorRT is unavailable, compilation fails, or
    the engine misses ``settings.tolerance`` against PyTorch.
    """
    import torch
    import torch_tensorrt

    require_tensorrt()
    environment = build_environment()
    directory = engine_directory(
        Path(cache_dir) if cache_dir else default_cache_dir(), bundle.digest, settings, environment
    )
    program = bundle.load_program()
    windows = reference_windows(bundle)
    started = time.perf_counter()
    module = _load_cached(directory, settings, environment)
    from_cache = module is not None
    if module is None:
        module = compile_program(program, bundle.input_shape, settings)
    parity = engine_parity(module, program, windows)
    seconds = time.perf_counter() - started
    if parity > settings.tolerance:
        raise TensorRTError(
            f"the TensorRT engine ({settings.label}) differs from PyTorch by {parity:.2e}, above "
            f"its tolerance {settings.tolerance:.0e}: not using it (delete {directory} to rebuild)"
        )
    if not from_cache:
        directory.mkdir(parents=True, exist_ok=True)
        engine_path = directory / ENGINE_FILE
        example = torch.zeros(bundle.input_shape, dtype=torch.float32, device="cuda")
        torch_tensorrt.save(module, str(engine_path), arg_inputs=[example])
        record = {
            "settings": settings.to_dict(),
            "environment": environment,
            "bundle_digest": bundle.digest,
            "bundle": str(bundle.directory),
            "engine_sha256": sha256_file(engine_path),
            "build_seconds": seconds,
            "parity_max_abs": parity,
            "parity_tolerance": settings.tolerance,
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (directory / SETTINGS_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return module, EngineReport(settings, directory, from_cache, seconds, parity, environment)


def _load_cached(
    directory: Path, settings: TensorRTSettings, environment: Mapping[str, str]
) -> Any:
    """The cached module when its record matches these settings and its bytes are intact."""
    import torch_tensorrt

    import edge.gru_rewrite  # noqa: F401  registers mjca_edge::gru, which "torch" engines call

    engine_path = directory / ENGINE_FILE
    try:
        record = json.loads((directory / SETTINGS_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if (
        record.get("settings") != settings.to_dict()
        or record.get("environment") != dict(environment)
        or not engine_path.is_file()
        or record.get("engine_sha256") != sha256_file(engine_path)
    ):
        return None
    # The engine file was written by this machine's own build (hash recorded above).
    return torch_tensorrt.load(str(engine_path)).module()


__all__ = [
    "ENGINE_FILE",
    "GRU_HANDLING",
    "PARITY_TOLERANCE",
    "PRECISIONS",
    "SETTINGS_FILE",
    "EngineReport",
    "TensorRTError",
    "TensorRTSettings",
    "build_engine",
    "build_environment",
    "cache_key",
    "compile_options_accepted",
    "compile_program",
    "default_cache_dir",
    "engine_directory",
    "engine_parity",
    "fp16_options",
    "load_or_build",
    "prepare_program",
    "reference_windows",
    "require_tensorrt",
    "tensorrt_available",
    "to_device",
    "variants",
]
