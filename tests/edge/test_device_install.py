"""The device install: the runtime's packages run without the training stack.

`pip install mjca-edge` brings numpy, numba, pyserial and onnxruntime only; torch,
scipy, matplotlib and tqdm come with the `train` extra. Here a child interpreter
refuses to import those four (as a machine without them would) and must still
import every runtime module and answer a simulated device end to end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from helpers.paths import REPO

TRAINING_STACK = ("torch", "scipy", "matplotlib", "tqdm")
LAZY_TORCH_MODULES = {"edge.gru_rewrite"}
"""Imported only by the TensorRT path, which needs torch by nature."""
OPENSIM_EXTRA_MODULES = {"calib.osim_import", "calib.osim_model"}
"""Imported only by `calib-subject --osim`, which needs the opensim extra (opensim, scipy, tqdm)."""

BLOCKER = textwrap.dedent(f"""
    import importlib.abc, sys

    class NoTrainingStack(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {TRAINING_STACK!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}} (device install)")
            return None

    sys.meta_path.insert(0, NoTrainingStack())
""")


def _child(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code), *args],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def _runtime_modules() -> list[str]:
    names = []
    for package in ("edge", "firmware_bridge", "calib"):
        for path in sorted((REPO / package).rglob("*.py")):
            module = ".".join(path.relative_to(REPO).with_suffix("").parts)
            names.append(module.removesuffix(".__init__"))
    return [n for n in names if n not in LAZY_TORCH_MODULES | OPENSIM_EXTRA_MODULES]


def test_every_runtime_module_imports_without_the_training_stack():
    result = _child(
        """
        import importlib, json, sys
        failed = {}
        for name in json.loads(sys.argv[1]):
            try:
                importlib.import_module(name)
            except ImportError as exc:
                failed[name] = str(exc)
        print(json.dumps(failed))
    """,
        json.dumps(_runtime_modules()),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {}


@pytest.mark.slow
def test_edge_run_answers_a_simulated_device_without_the_training_stack():
    result = _child("""
        import sys
        from edge.cli import main
        sys.exit(main(["--simulate", "--duration", "2", "--json-status"]))
    """)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["ended"] == "stream ended"
    assert summary["samples_in"] == summary["estimates_out"] + summary["skipped"] > 300
    assert "backend   onnxruntime" in result.stderr
