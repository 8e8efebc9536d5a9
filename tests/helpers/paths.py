"""Where the repository and the development data are, computed once.

The real OpenSim data lives outside the repository, at ``../shared/data`` from its root
(shared/data/README.md says what each file is). Tests reach it through the fixtures of
tests/conftest.py, which skip, naming the missing path, where it is absent; a test that
names a path here directly carries the ``needs_data`` marker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
GAIT2392 = SHARED_DATA / "opensim-gait2392"
DEFAULT_SUBJECT_FILE = REPO / "calib" / "data" / "default_subject.json"

SUBJECT01_IK = GAIT2392 / "subject01_walk1_ik.mot"
SUBJECT01_GRF = GAIT2392 / "subject01_walk1_grf.mot"
SUBJECT01_LOADS = GAIT2392 / "subject01_walk1_grf.xml"
SUBJECT01_MODEL = GAIT2392 / "subject01_simbody_adjusted.osim"
GENERIC_MODEL = GAIT2392 / "gait2392_thelen2003muscle.osim"
SO_ACTIVATION = GAIT2392 / "so" / "subject01_walk1_ik_StaticOptimization_activation.sto"
SO_FORCE = GAIT2392 / "so" / "subject01_walk1_ik_StaticOptimization_force.sto"


def absent_data_reason(path: Path) -> str:
    """Why a test that needs ``path`` of the development data is skipped."""
    return f"development data absent: {path} (see shared/data/README.md)"


def require(path: Path) -> Path:
    """``path``, or skip the test naming it when the development data is not there."""
    if not path.exists():
        pytest.skip(absent_data_reason(path))
    return path
