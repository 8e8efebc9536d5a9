"""The leg's coordinates and the names every package shares (OpenSim's, without the side suffix)."""

from __future__ import annotations

import numpy as np

COORDINATES = ("hip_flexion", "hip_adduction", "hip_rotation", "knee_angle", "ankle_angle")
"""The order of q's last axis everywhere (rad, OpenSim's signs)."""

SAGITTAL_COORDINATES = ("hip_flexion", "knee_angle", "ankle_angle")
SAGITTAL_INDEX = (0, 3, 4)
JOINT_NAMES = ("hip", "knee", "ankle")
SEGMENT_NAMES = ("thigh", "shank", "foot")


def full_pose(q_sagittal) -> np.ndarray:
    """A pose (..., 5) from sagittal angles (..., 3), hip adduction and rotation at 0."""
    q_sagittal = np.asarray(q_sagittal, dtype=np.float64)
    q = np.zeros(q_sagittal.shape[:-1] + (len(COORDINATES),))
    q[..., SAGITTAL_INDEX] = q_sagittal
    return q

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
"""The ten right-leg gait2392 muscles the paper reports (PS RF BF SM IL VI VL VM GL GM)."""
