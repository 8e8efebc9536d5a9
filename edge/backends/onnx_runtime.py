"""ONNX Runtime on the CPU: the fastest measured CPU path for this network.

One session, one intra-op thread by default, sequential execution, all graph
optimisations; input and output are bound once to preallocated buffers (IO
binding), so a call copies the window in, runs, and copies M floats out.
onnxruntime is imported lazily: only a process that uses this backend pays for it.
"""

from __future__ import annotations

import numpy as np

from edge.backends.base import BackendError, BundleBackend
from edge.bundle import ONNX_INPUT_NAME, ONNX_OUTPUT_NAME, Bundle, check_model_input


class OnnxRuntimeBackend(BundleBackend):
    name = "onnxruntime"

    def __init__(self, bundle: Bundle, threads: int = 1) -> None:
        super().__init__(bundle)
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError(
                "onnxruntime is not installed: `pip install onnxruntime` or choose --backend torch"
            ) from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(int(threads), 1)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(bundle.onnx_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BackendError(
                f"onnxruntime {ort.__version__} cannot load {bundle.onnx_path} ({exc}); "
                f"re-export the bundle or choose --backend torch"
            ) from exc
        check_model_input(bundle, tuple(self.session.get_inputs()[0].shape), bundle.onnx_path.name)
        self._x = np.zeros(self.input_shape, dtype=np.float32)
        self._y = np.zeros((1, self.n_muscles), dtype=np.float32)
        self._binding = self.session.io_binding()
        self._binding.bind_input(
            ONNX_INPUT_NAME, "cpu", 0, np.float32, list(self._x.shape), self._x.ctypes.data
        )
        self._binding.bind_output(
            ONNX_OUTPUT_NAME, "cpu", 0, np.float32, list(self._y.shape), self._y.ctypes.data
        )

    def infer(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        self._check_input(x)
        np.copyto(self._x, x)
        self.session.run_with_iobinding(self._binding)
        result = self._output(out)
        result[:] = self._y[0]
        return result
