"""A network small enough to train in seconds, and train-fit's arguments for the real trial."""

from __future__ import annotations

from pathlib import Path

from helpers.paths import (
    DEFAULT_SUBJECT_FILE,
    SO_ACTIVATION,
    SUBJECT01_GRF,
    SUBJECT01_IK,
    SUBJECT01_LOADS,
)

TINY = {"joint_dim": 8, "heads": 2, "integrated_dim": 16, "gru_hidden": 16, "head_dims": [16]}


def real_trial_args(out: Path, epochs: int = 2) -> list[str]:
    """train-fit on the shared trial with the default subject and OpenSim's labels."""
    return [
        "--ik", str(SUBJECT01_IK),
        "--grf", str(SUBJECT01_GRF),
        "--loads", str(SUBJECT01_LOADS),
        "--subject", str(DEFAULT_SUBJECT_FILE),
        "--labels", str(SO_ACTIVATION),
        "--out", str(out), "--epochs", str(epochs), "--no-progress",
    ]  # fmt: skip
