"""The recipes of scripts/ as modules, so that tests call their functions directly."""

from __future__ import annotations

import importlib.util
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
