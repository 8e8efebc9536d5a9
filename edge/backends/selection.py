"""Choosing the inference backend for a bundle.

``auto`` means TensorRT where CUDA and torch-tensorrt are present, else the
fastest measured CPU path, else the ExportedProgram in PyTorch. The CPU order
(``CPU_PREFERENCE``) is what scripts/bench_backends.py measures at batch 1, one
thread: ONNX Runtime on the bundle's last-step graph first, several times faster
than the ExportedProgram in PyTorch (figures: docs/measurements.md). A backend that
cannot be created (library missing, engine failing its parity check) is passed
over, and ``SelectedBackend.notes`` says why.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from edge.backend_names import BACKEND_NAMES, CPU_PREFERENCE
from edge.backends.base import Backend, BackendError
from edge.bundle import Bundle


def create_backend(
    bundle: Bundle, name: str, threads: int = 1, cache_dir: Path | None = None
) -> Backend:
    """Build one named backend; raises ``BackendError`` saying why it cannot run here."""
    if name == "onnxruntime":
        from edge.backends.onnx_runtime import OnnxRuntimeBackend

        return OnnxRuntimeBackend(bundle, threads=threads)
    if name == "torch":
        from edge.backends.torch_program import TorchProgramBackend

        return TorchProgramBackend(bundle, threads=threads)
    if name == "tensorrt":
        from edge.backends.tensorrt_backend import TensorRTBackend
        from edge.tensorrt_cache import tensorrt_available

        usable, reason = tensorrt_available()
        if not usable:
            raise BackendError(f"the tensorrt backend cannot run here: {reason}")
        return TensorRTBackend(bundle, cache_dir=cache_dir)
    raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")


def select_backend(
    bundle: Bundle,
    name: str = "auto",
    threads: int = 1,
    cache_dir: Path | None = None,
    notes: list[str] | None = None,
) -> Backend:
    """The backend ``name`` for ``bundle``, or with "auto" the best that works here.

    notes: if given, receives one line per backend that "auto" passed over and why.
    """
    if name != "auto":
        return create_backend(bundle, name, threads, cache_dir)
    from edge.tensorrt_cache import tensorrt_available

    usable, reason = tensorrt_available()
    candidates = (("tensorrt",) if usable else ()) + CPU_PREFERENCE
    if not usable and notes is not None:
        notes.append(f"tensorrt skipped: {reason}")
    failures = []
    for candidate in candidates:
        try:
            return create_backend(bundle, candidate, threads, cache_dir)
        except BackendError as exc:
            failures.append(f"{candidate}: {exc}")
            if notes is not None:
                notes.append(f"{candidate} skipped: {exc}")
    raise BackendError("no inference backend works here: " + "; ".join(failures))


FALLBACK_ORDER = ("tensorrt", "onnxruntime", "torch")
"""After a backend fails, the runtime tries the ones after it here, in order."""


def backend_loader(
    bundle: Bundle, log: TextIO
) -> tuple[Callable[[str], Backend], Callable[[str], Backend]]:
    """(load, fallback): ``load(name)`` selects and warms up a backend (one thread);
    ``fallback(failed)`` loads the next of ``FALLBACK_ORDER`` that works here, saying on
    ``log`` why it passed over the others, and raises RuntimeError when none does."""

    def load(name: str) -> Backend:
        backend = select_backend(bundle, name, threads=1)
        backend.warmup(200)
        return backend

    def fallback(failed: str) -> Backend:
        order = [n for n in FALLBACK_ORDER if n != failed]
        if failed in FALLBACK_ORDER:
            order = list(FALLBACK_ORDER[FALLBACK_ORDER.index(failed) + 1 :])
        for name in order:
            try:
                return load(name)
            except BackendError as exc:  # this fallback is unavailable too: try the next
                print(f"fallback backend {name} unavailable: {exc}", file=log, flush=True)
        raise RuntimeError(f"backend {failed} failed and no fallback backend could be loaded")

    return load, fallback
