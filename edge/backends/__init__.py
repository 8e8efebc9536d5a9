"""Inference backends: one bundle, one window in, M activations out.

``select_backend(bundle, name="auto", threads=1)`` returns a ``Backend`` with
``.name``, ``.warmup(n)`` and ``.infer(x (1, W, 9) float32) -> (M,) float32``.
Backends: "tensorrt" (torch-tensorrt on CUDA), "onnxruntime" (CPU),
"torch" (the ExportedProgram in PyTorch). Heavy libraries are imported only by
the backend that needs them.
"""

from edge.backends.base import Backend, BackendError, BundleBackend
from edge.backends.onnx_runtime import OnnxRuntimeBackend
from edge.backends.selection import (
    BACKEND_NAMES,
    CPU_PREFERENCE,
    FALLBACK_ORDER,
    backend_loader,
    create_backend,
    select_backend,
)
from edge.backends.torch_program import TorchProgramBackend

__all__ = [
    "BACKEND_NAMES",
    "CPU_PREFERENCE",
    "FALLBACK_ORDER",
    "Backend",
    "BackendError",
    "BundleBackend",
    "OnnxRuntimeBackend",
    "TorchProgramBackend",
    "backend_loader",
    "create_backend",
    "select_backend",
]
