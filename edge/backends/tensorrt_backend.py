"""TensorRT through torch-tensorrt on a CUDA device (Jetson or desktop GPU).

At construction the bundle's ExportedProgram is compiled, or its cached engine
loaded (edge/tensorrt_cache.py), and checked against PyTorch on the CPU. A call
copies the window into pinned host memory, then to a preallocated device
tensor, runs the engine, and copies M floats back; with ``cuda_graphs`` the
engine calls are replayed as a CUDA graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.backends.base import BackendError, BundleBackend
from edge.bundle import Bundle
from edge.tensorrt_cache import TensorRTError, TensorRTSettings, load_or_build


class TensorRTBackend(BundleBackend):
    name = "tensorrt"

    def __init__(
        self,
        bundle: Bundle,
        settings: TensorRTSettings | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        super().__init__(bundle)
        if settings is None:
            try:
                settings = TensorRTSettings.from_dict(bundle.manifest.tensorrt)
            except (TypeError, ValueError) as exc:
                raise BackendError(
                    f"the bundle's recommended TensorRT settings are invalid ({exc}); re-export it"
                ) from exc
        self.settings = settings
        try:
            module, self.report = load_or_build(bundle, settings, cache_dir)  # an EngineReport
        except TensorRTError as exc:
            raise BackendError(str(exc)) from exc
        import torch

        self._torch = torch
        self._cudagraphs = None
        if settings.cuda_graphs:
            import torch_tensorrt

            self._cudagraphs = torch_tensorrt.runtime.enable_cudagraphs(module)
            module = self._cudagraphs.__enter__()
        self.module = module
        self._x_host = torch.zeros(self.input_shape, dtype=torch.float32).pin_memory()
        self._x_device = torch.zeros(self.input_shape, dtype=torch.float32, device="cuda")
        self._y_host = torch.zeros((1, self.n_muscles), dtype=torch.float32).pin_memory()
        self._x_host_array = self._x_host.numpy()
        self._y_host_array = self._y_host.numpy()
        self._stream = torch.cuda.current_stream()

    def infer(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        self._check_input(x)
        self._x_host_array[...] = x
        # Both copies and the engine run on one stream; the synchronize below ends
        # every transfer before the pinned buffers are touched again.
        self._x_device.copy_(self._x_host, non_blocking=True)
        with self._torch.no_grad():  # not inference_mode: CUDA-graph buffers outlive a call
            y = self.module(self._x_device)
        self._y_host.copy_(y, non_blocking=True)
        self._stream.synchronize()
        result = self._output(out)
        result[:] = self._y_host_array[0]
        return result

    def close(self) -> None:
        """Leave CUDA-graph mode (restores the plain engine)."""
        if self._cudagraphs is not None:
            self._cudagraphs.__exit__(None, None, None)
            self._cudagraphs = None
