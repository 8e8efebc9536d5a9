"""The bundle's ExportedProgram run by PyTorch on the CPU: the portable fallback.

It needs torch (the ``train`` extra, or the platform's own build on a Jetson);
without it the backend is unavailable and says so. ``threads`` sets torch's
intra-op thread count for the whole process (torch has no per-module setting).
"""

from __future__ import annotations

import numpy as np

from edge.backends.base import BackendError, BundleBackend
from edge.bundle import Bundle


class TorchProgramBackend(BundleBackend):
    name = "torch"

    def __init__(self, bundle: Bundle, threads: int = 1) -> None:
        try:
            import torch
        except ImportError:
            raise BackendError(
                "the torch backend needs PyTorch, which is not installed: install it (pip "
                "install 'mjca-edge[train]', or the platform's build) or use onnxruntime"
            ) from None

        super().__init__(bundle)
        torch.set_num_threads(max(int(threads), 1))
        self._torch = torch
        self.module = bundle.load_program().module()
        self._x = torch.zeros(self.input_shape, dtype=torch.float32)

    def infer(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        self._check_input(x)
        self._x.numpy()[...] = x
        with self._torch.inference_mode():
            y = self.module(self._x)
        result = self._output(out)
        result[:] = y.numpy()[0]
        return result
