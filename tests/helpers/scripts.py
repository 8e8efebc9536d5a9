"""The scripts of scripts/: as modules, so that tests call their functions directly, or run as
a user runs them."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from types import ModuleType

from helpers.paths import REPO


def load_script(name: str) -> ModuleType:
    """scripts/<name>.py executed as the module ``name`` (registered in sys.modules, which
    its dataclasses need)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None, name
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_script(
    name: str, *args: str, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """``python scripts/<name>.py ARGS`` in a new process, as a user runs it, importing this
    checkout's packages; its stdout and stderr captured as text, its exit status not checked."""
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / f"{name}.py"), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
