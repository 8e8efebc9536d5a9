"""The names of edge-run's backends, in a module that imports nothing.

edge-run's parser offers them as ``--backend`` choices before anything heavy is
imported; ``edge.backends.selection`` chooses among them.
"""

from __future__ import annotations

CPU_PREFERENCE = ("onnxruntime", "torch")
"""CPU backends, fastest measured first (scripts/bench_backends.py)."""
BACKEND_NAMES = ("auto", "tensorrt", *CPU_PREFERENCE)
"""Every value of ``--backend``: auto chooses TensorRT where it runs, else the CPU order."""
