"""The test harness: fixtures for the development data, and the ``needs_data`` and ``gpu`` markers.

Markers (registered in pyproject.toml):

- ``slow``: a real run of more than about ten seconds (pty sessions, sanitizer builds, trainings);
  ``python3 -m pytest -m "not slow"`` is the quick run.
- ``needs_data``: reads the development data at ``../shared/data``. A test that asks for one of
  the data fixtures below carries it without saying so; a test that reads the data another way
  (a path of helpers.paths, a package default) is marked by hand. Where the data is absent these
  tests are skipped, naming the path. While the data is present, a test that opens a file under
  it without the marker fails, so that ``-m "not needs_data"`` is a run that needs no data.
- ``gpu``: needs a CUDA device; skipped, saying what torch sees, where there is none.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from pathlib import Path

import pytest
from helpers.paths import (
    GAIT2392,
    GENERIC_MODEL,
    SHARED_DATA,
    SO_ACTIVATION,
    SO_FORCE,
    SUBJECT01_GRF,
    SUBJECT01_IK,
    SUBJECT01_LOADS,
    SUBJECT01_MODEL,
    absent_data_reason,
    require,
)

DATA_PATHS = {
    "shared_data": (SHARED_DATA, "../shared/data: the development data (shared/data/README.md)."),
    "gait2392": (GAIT2392, "The folder of the OpenSim gait2392 walking trial."),
    "subject01_ik": (SUBJECT01_IK, "subject01's IK coordinates (.mot, degrees, 60 Hz, 0.5–4.0 s)."),
    "subject01_grf": (SUBJECT01_GRF, "subject01's ground reaction forces (.mot, 600 Hz, 0–2.5 s)."),
    "subject01_loads": (SUBJECT01_LOADS, "The ExternalLoads naming the GRF columns (.xml)."),
    "subject01_model": (SUBJECT01_MODEL, "gait2392 scaled to subject01 (.osim)."),
    "generic_model": (GENERIC_MODEL, "The generic, unscaled gait2392 model (.osim)."),
    "so_activation": (SO_ACTIVATION, "OpenSim's static-optimisation activations (.sto)."),
    "so_force": (SO_FORCE, "OpenSim's static-optimisation muscle forces (.sto, N)."),
}
"""The data fixtures: each returns its path, or skips naming it where it is absent."""


def _data_fixture(name: str, path: Path, doc: str) -> object:
    def fixture() -> Path:
        return require(path)

    fixture.__doc__ = doc
    return pytest.fixture(scope="session", name=name)(fixture)


for _name, (_path, _doc) in DATA_PATHS.items():
    globals()[_name] = _data_fixture(_name, _path, _doc)


@pytest.fixture(scope="session")
def subject01_trial_files(
    subject01_ik: Path, subject01_grf: Path, subject01_loads: Path
) -> tuple[Path, Path, Path]:
    """subject01's walking trial as a command line names it: IK, GRF and ExternalLoads."""
    return subject01_ik, subject01_grf, subject01_loads


def _cuda_absent() -> str | None:
    """Why no CUDA device can run a test here, or None where one can."""
    try:
        import torch
    except ImportError as error:
        return f"needs CUDA: torch is not importable ({error})"
    if not torch.cuda.is_available():
        return f"needs CUDA: torch {torch.__version__} sees no CUDA device"
    return None


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    data_absent = None if SHARED_DATA.is_dir() else absent_data_reason(SHARED_DATA)
    cuda_absent: str | None = None
    cuda_checked = False
    for item in items:
        if DATA_PATHS.keys() & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.needs_data)
        if data_absent and item.get_closest_marker("needs_data"):
            item.add_marker(pytest.mark.skip(reason=data_absent))
        if item.get_closest_marker("gpu"):
            if not cuda_checked:
                cuda_absent, cuda_checked = _cuda_absent(), True
            if cuda_absent:
                item.add_marker(pytest.mark.skip(reason=cuda_absent))


# A test reading the data without the needs_data marker: caught by an audit hook on open().

_UNMARKED_READS = pytest.StashKey[list[str]]()
_running: list[pytest.Item] = []  # the test being set up or run, if any
_SHARED_PREFIX = os.path.join(os.path.realpath(SHARED_DATA), "")


def _note_unmarked_reads(event: str, args: tuple[object, ...]) -> None:
    if event != "open" or not _running or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path = os.path.realpath(os.fsdecode(args[0]))
    item = _running[0]
    if path.startswith(_SHARED_PREFIX) and not item.get_closest_marker("needs_data"):
        item.stash.setdefault(_UNMARKED_READS, []).append(path)


if SHARED_DATA.is_dir():
    sys.addaudithook(_note_unmarked_reads)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    _running[:] = [item]
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    try:
        return (yield)
    finally:
        _running.clear()
        reads = item.stash.get(_UNMARKED_READS, [])
        if reads:
            pytest.fail(f"reads {reads[0]} but is not marked needs_data", pytrace=False)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown() -> None:
    _running.clear()
