"""Names and orders every package shares: the leg's coordinates, joints, segments, muscles.

Defined once here, because calib is the one package that train/ and edge/ both
import. Coordinate names carry no side suffix; OpenSim's columns and model
coordinates are ``<name>_r`` (right leg) or ``<name>_l`` (left leg).

The last axis of every pose q is ``COORDINATES`` in this order, in radians, with
OpenSim's signs: hip flexion +flexion, hip adduction +adduction, hip rotation
+internal rotation, knee angle 0 straight and negative in flexion, ankle angle
+dorsiflexion.
"""

from __future__ import annotations

from typing import Any

import numpy as np

COORDINATES = ("hip_flexion", "hip_adduction", "hip_rotation", "knee_angle", "ankle_angle")
SAGITTAL_COORDINATES = ("hip_flexion", "knee_angle", "ankle_angle")
SAGITTAL_INDEX = tuple(COORDINATES.index(c) for c in SAGITTAL_COORDINATES)
JOINT_NAMES = ("hip", "knee", "ankle")
# Each joint's coordinates, in COORDINATES order, which is also the order of its
# intrinsic rotation sequence.
JOINT_COORDINATES = {
    "hip": ("hip_flexion", "hip_adduction", "hip_rotation"),
    "knee": ("knee_angle",),
    "ankle": ("ankle_angle",),
}
SEGMENT_NAMES = ("thigh", "shank", "foot")
SIDE_SUFFIX = {"right": "_r", "left": "_l"}

# The paper's ten right-leg muscles (gait2392 names): PS RF BF SM IL VI VL VM GL GM.
PAPER_MUSCLES = (
    "psoas_r",
    "rect_fem_r",
    "bifemlh_r",
    "semimem_r",
    "iliacus_r",
    "vas_int_r",
    "vas_lat_r",
    "vas_med_r",
    "lat_gas_r",
    "med_gas_r",
)

# Bounds of a muscle activation (dimensionless), shared by the physics loss and the runtime.
ACTIVATION_MIN = 0.01
ACTIVATION_MAX = 1.0


def opensim_coordinate(name: str, side: str = "right") -> str:
    """OpenSim's name of a coordinate on one side, e.g. ``hip_flexion`` -> ``hip_flexion_r``."""
    return name + SIDE_SUFFIX[side]


def full_pose(q_sagittal: Any) -> np.ndarray:
    """A sagittal pose (..., 3) = (hip_flexion, knee_angle, ankle_angle) rad as a full pose
    (..., 5) in ``COORDINATES`` order, hip adduction and rotation at 0 (neutral)."""
    q_sagittal = np.asarray(q_sagittal, dtype=np.float64)
    if q_sagittal.ndim == 0 or q_sagittal.shape[-1] != len(SAGITTAL_COORDINATES):
        raise ValueError(
            f"a sagittal pose has shape (..., 3) = {SAGITTAL_COORDINATES} in rad, "
            f"got shape {q_sagittal.shape}"
        )
    q = np.zeros((*q_sagittal.shape[:-1], len(COORDINATES)))
    q[..., SAGITTAL_INDEX] = q_sagittal
    return q


def as_pose(q: Any) -> np.ndarray:
    """``q`` as a float64 array (..., 5) in ``COORDINATES`` order; any other width is refused."""
    q = np.asarray(q, dtype=np.float64)
    if q.ndim == 0 or q.shape[-1] != len(COORDINATES):
        raise ValueError(
            f"joint angles must have shape (..., 5) = ({', '.join(COORDINATES)}) in rad, "
            f"got shape {q.shape}; a sagittal pose (hip_flexion, knee_angle, ankle_angle) "
            "becomes one with calib.coordinates.full_pose(q), hip adduction and rotation at 0"
        )
    return q
