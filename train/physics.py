"""The physics the training loss and the planar static optimisation use, in one place.

Rigid-body dynamics of the thigh-shank-foot chain (``train.dynamics``, eqs. 23-32)
and the Hill-type muscles (``train.hill``, eqs. 17-20), differentiable torch,
SI units, OpenSim coordinates (hip_flexion, knee_angle, ankle_angle) in rad.
"""

from train.dynamics import (
    GRAVITY,
    BaseMotion,
    LegChain,
    coriolis_matrix,
    gravity_torques,
    grf_torques,
    inverse_dynamics,
    joint_positions,
    mass_matrix,
    segment_com_positions,
)
from train.hill import (
    THELEN_GAIT2392,
    MuscleForces,
    MuscleModel,
    ThelenConstants,
    active_force_length,
    force_velocity,
    muscle_forces,
    muscle_torques,
    passive_force_length,
    path_lengths,
)

__all__ = [
    "GRAVITY",
    "THELEN_GAIT2392",
    "BaseMotion",
    "LegChain",
    "MuscleForces",
    "MuscleModel",
    "ThelenConstants",
    "active_force_length",
    "coriolis_matrix",
    "force_velocity",
    "gravity_torques",
    "grf_torques",
    "inverse_dynamics",
    "joint_positions",
    "mass_matrix",
    "muscle_forces",
    "muscle_torques",
    "passive_force_length",
    "path_lengths",
    "segment_com_positions",
]
