"""Shared fixtures of the train tests: the default subject and a synthetic 3-D walking trial."""

from __future__ import annotations

import numpy as np
import pytest

from calib import default_subject
from train.dynamics3d import LegModel, leg_kinematics
from train.trial import LegTrial, only_in_contact

RATE_HZ = 100.0


@pytest.fixture(scope="session")
def subject():
    return default_subject()


@pytest.fixture(scope="session")
def walking_trial(subject):
    """``walking_trial(n=120, side="r", phase=0.0)``: a synthetic 3-D trial (see below)."""

    def make(n: int = 120, side: str = "r", phase: float = 0.0) -> LegTrial:
        return walking_like_trial(subject, n, side, phase)

    return make


def walking_like_trial(subject, n: int = 120, side: str = "r", phase: float = 0.0) -> LegTrial:
    """A smooth 3-D movement of all five coordinates and the pelvis, the foot loaded half the
    time with its centre of pressure under the heel-to-toe line."""
    t = np.arange(n) / RATE_HZ
    w = 2 * np.pi
    s = t + phase / w  # the phase of the movement, s
    q = np.column_stack(
        [
            0.35 * np.sin(w * s),
            0.08 * np.sin(w * s + 0.4),
            0.1 * np.sin(w * s + 1.1),
            -0.6 + 0.5 * np.sin(w * s + 1.0),
            0.15 * np.sin(2 * w * s),
        ]
    )
    pelvis = np.column_stack(
        [
            0.08 + 0.03 * np.sin(2 * w * s),
            0.05 * np.sin(w * s),
            0.08 * np.sin(w * s + 0.3),
            0.6 + 1.2 * t,
            0.95 + 0.02 * np.sin(2 * w * s),
            0.01 * np.sin(w * s),
        ]
    )
    contact = np.sin(w * s) > 0
    model = LegModel.from_subject(subject)
    zero6, zero5 = np.zeros((n, 6)), np.zeros((n, 5))
    centres = leg_kinematics(model, pelvis, zero6, zero6, q, zero5, zero5).joint_centre
    cop = 0.5 * (centres[:, 2] + centres[:, 3])
    cop[:, 1] = 0.0
    force = np.column_stack([60 * np.cos(w * s), 650 + 100 * np.sin(2 * w * s), 20 * np.sin(w * s)])
    free = np.column_stack([np.zeros(n), 3 * np.sin(w * s), np.zeros(n)])
    return LegTrial(
        time=0.5 + t,
        q=q,
        pelvis=pelvis,
        **only_in_contact(contact, force, cop, free),
        contact=contact,
        side=side,
        rate_hz=RATE_HZ,
    )
