"""What every inference backend offers, and what they share.

A backend answers one window at a time: ``infer(x)`` with ``x`` float32
(1, W, 9) raw SI features (``edge.derivatives.INPUT_FEATURES`` order) returns
the M activations of the bundle's muscles as float32 (M,). ``infer(x, out)``
writes into a caller-owned (M,) float32 array instead, so a real-time loop
allocates nothing per call. ``warmup(n)`` runs ``n`` calls on a typical window
(the training input mean) so that lazy initialisation, JIT compilation and
allocator growth happen before the loop starts.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from edge.bundle import Bundle


class BackendError(RuntimeError):
    """A backend cannot be created or used here; the message says what to do."""


@runtime_checkable
class Backend(Protocol):
    name: str

    def warmup(self, n: int = 100) -> None: ...

    def infer(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray: ...


class BundleBackend:
    """Shared input checks and warm-up for backends built from a bundle."""

    name = "abstract"

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.input_shape = bundle.input_shape
        self.n_muscles = bundle.manifest.n_muscles
        mean = np.asarray(bundle.manifest.input_mean, dtype=np.float32)
        self._typical_window = np.ascontiguousarray(np.broadcast_to(mean, self.input_shape))

    def warmup(self, n: int = 100) -> None:
        out = np.empty(self.n_muscles, dtype=np.float32)
        for _ in range(max(int(n), 1)):
            self.infer(self._typical_window, out)

    def infer(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def _check_input(self, x: np.ndarray) -> None:
        if x.shape != self.input_shape or x.dtype != np.float32:
            raise BackendError(
                f"{self.name} backend takes float32 windows of shape {self.input_shape}, "
                f"got {x.dtype} {x.shape}"
            )

    def _output(self, out: np.ndarray | None) -> np.ndarray:
        return np.empty(self.n_muscles, dtype=np.float32) if out is None else out

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.bundle.directory}>"
