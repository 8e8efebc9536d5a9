"""What the muscles must do at every sample of a trial: the one source of the physics loss's
and the static optimisation's targets.

Per sample, from the trial's joint angles (best non-causal derivatives,
``train.trial.noncausal_derivatives``), pelvis motion and ground reaction:

- ``required_torque`` tau_req (N, C) N m: the generalised forces the balanced
  coordinates need (eq. 16 with tau_e the ground reaction's torques, eq. 24):
  * five coordinates (hip flexion, adduction, rotation, knee, ankle): the
    three-dimensional leg below the moving pelvis (``train.dynamics3d``);
  * the sagittal three: the planar chain of ``train.dynamics`` (the paper's
    model, eqs. 23-32), its base the pelvis's tilt and the hip centre's motion;
- ``moment_arms`` R (N, M, C) m of the balanced coordinates, r = -dl/dq (eq. 17),
  at the full pose (all five coordinates as measured);
- ``force_gain`` A and ``force_passive`` P (N, M) N with F = A a + P (eq. 18):
  with a rigid tendon the fibre length and velocity follow from the pose and
  its rate alone, so muscle force is affine in activation; A a is the active
  part, what OpenSim's static optimisation reports as force.

``PhysicsOptions.base_motion`` means the same for both callers: True moves the
pelvis as measured (its rates and accelerations enter the dynamics), False
holds it still at each sample's measured pose (zero pelvis rates).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from calib.coordinates import COORDINATES, SAGITTAL_COORDINATES
from train import dynamics as planar
from train.dynamics3d import (
    PELVIS_COORDINATES,
    GroundReaction,
    LegModel,
    inverse_dynamics,
    leg_kinematics,
)
from train.hill import muscle_forces
from train.trial import FREE_MOMENT, LegTrial, noncausal_derivatives

BALANCES = {"five": COORDINATES, "sagittal": SAGITTAL_COORDINATES}
"""The coordinates whose generalised forces the muscles balance, by name."""

FIVE_COORDINATE_DATA = COORDINATES + PELVIS_COORDINATES + (FREE_MOMENT,)
"""What a trial must have measured for a five-coordinate balance."""


class PhysicsError(ValueError):
    """Targets that cannot be computed from this trial; the message says what is missing."""


@dataclass(frozen=True)
class PhysicsOptions:
    """``balanced``: the coordinates the muscles balance (``BALANCES``); ``base_motion``:
    the pelvis moves as measured (True) or is held at each sample's pose (False)."""

    balanced: tuple[str, ...] = COORDINATES
    base_motion: bool = True

    def __post_init__(self) -> None:
        if tuple(self.balanced) not in BALANCES.values():
            choices = list(BALANCES.values())
            raise PhysicsError(
                f"balanced coordinates must be one of {choices}, got {self.balanced}"
            )


@dataclass(frozen=True, eq=False)
class SamplePhysics:
    """The per-sample targets (N samples, M muscles, C balanced coordinates) the loss and the
    static optimisation need; see the module docstring. ``q``, ``qd``, ``qdd`` (N, 5) are
    the full pose and its non-causal derivatives (rad, rad/s, rad/s^2).

    Its fields are the one list of these arrays: a trial's (``TrialPhysics``) and the
    training windows' (``train.windows.WindowSet``) extend it."""

    q: np.ndarray
    qd: np.ndarray
    qdd: np.ndarray
    required_torque: np.ndarray
    moment_arms: np.ndarray
    force_gain: np.ndarray
    force_passive: np.ndarray


@dataclass(frozen=True, eq=False)
class TrialPhysics(SamplePhysics):
    """``SamplePhysics`` at every sample of one trial, and the coordinates it balances."""

    balanced: tuple[str, ...]


def choose_balance(trials: list[LegTrial], requested: str = "auto") -> tuple[tuple[str, ...], str]:
    """The balanced coordinates for ``trials`` and a one-line reason.

    ``requested``: "auto" (five where every trial measured what they need, else
    the sagittal three), "five" (refused, naming what is missing, when a trial
    lacks it) or "sagittal".
    """
    if requested not in ("auto", *BALANCES):
        raise PhysicsError(f"balance must be auto, five or sagittal, got {requested!r}")
    if requested == "sagittal":
        return SAGITTAL_COORDINATES, "balancing the sagittal hip, knee and ankle (as asked)"
    lacking = [(t, t.missing(FIVE_COORDINATE_DATA)) for t in trials]
    lacking = [(t, missing) for t, missing in lacking if missing]
    if not lacking:
        return COORDINATES, "balancing hip flexion, adduction and rotation, knee and ankle"
    trial, missing = lacking[0]
    what = (
        f"{trial.source[0] if trial.source else 'a trial'} has no "
        f"{', '.join(_column(name, trial) for name in missing)}"
    )
    if requested == "five":
        raise PhysicsError(
            f"a five-coordinate balance needs hip adduction and rotation, the six pelvis "
            f"coordinates and the GRF's free moment: {what}; use --sagittal"
        )
    return SAGITTAL_COORDINATES, f"{what}: balancing the sagittal hip, knee and ankle only"


def _column(name: str, trial: LegTrial) -> str:
    if name == FREE_MOMENT:
        return "free moment (the ExternalLoads names no torque columns)"
    return f"{name}_{trial.side}" if name in COORDINATES else name


def force_factors(subject, q: np.ndarray, qd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(A, P), each (..., M) N: F = A a + P (eq. 18, rigid tendon) at pose q (..., 5) rad
    and rate qd (..., 5) rad/s; A is the active force at full activation
    (F_o f_a f_v cos phi), P the passive force (F_o f_p cos phi).

    The muscle-tendon velocity is dl/dt = -R qd (R = -dl/dq).
    """
    q = np.asarray(q, dtype=np.float64)
    l_mt = torch.as_tensor(subject.muscle_tendon_length(q))
    v_mt = torch.as_tensor(-np.einsum("...mj,...j->...m", subject.moment_arms(q), qd))
    with torch.no_grad():
        forces = muscle_forces(subject.muscle_arrays(), torch.ones_like(l_mt), l_mt, v_mt)
    return forces.active.numpy(), forces.passive.numpy()


def required_torques(
    trial: LegTrial,
    subject,
    qd: np.ndarray,
    qdd: np.ndarray,
    options: PhysicsOptions,
    model: LegModel | None = None,
) -> np.ndarray:
    """tau_req (N, C) N m of the balanced coordinates (see the module docstring)."""
    model = model or LegModel.from_subject(subject)
    if options.base_motion:
        pelvis_qd, pelvis_qdd = noncausal_derivatives(trial.pelvis, trial.rate_hz)
    else:
        pelvis_qd = pelvis_qdd = np.zeros_like(trial.pelvis)
    ground = GroundReaction(trial.force, trial.cop, trial.free_moment)
    if options.balanced == COORDINATES:
        return inverse_dynamics(
            model, trial.pelvis, pelvis_qd, pelvis_qdd, trial.q, qd, qdd, ground
        )
    # The planar chain hangs from the hip centre, which the pelvis carries in 3-D.
    hip = leg_kinematics(model, trial.pelvis, pelvis_qd, pelvis_qdd, trial.q, qd, qdd)
    centre = hip.joint_centre[:, 0]
    base = planar.BaseMotion(
        tilt=trial.pelvis[:, 0],
        tilt_rate=pelvis_qd[:, 0],
        tilt_acceleration=pelvis_qdd[:, 0],
        hip_acceleration=hip.joint_acceleration[:, 0, :2],
    )
    chain = planar.LegChain.from_subject(subject)
    index = [COORDINATES.index(c) for c in SAGITTAL_COORDINATES]
    q, qd, qdd = trial.q[:, index], qd[:, index], qdd[:, index]
    tau = planar.inverse_dynamics(chain, q, qd, qdd, base=base)
    cop = np.where(trial.contact[:, None], trial.cop - centre, 0.0)[:, :2]
    return tau - planar.grf_torques(chain, q, trial.force[:, :2], cop, base_tilt=base.tilt)


def trial_physics(trial: LegTrial, subject, options: PhysicsOptions) -> TrialPhysics:
    """Everything the loss and the static optimisation need at every sample of ``trial``."""
    if options.balanced == COORDINATES and trial.missing(FIVE_COORDINATE_DATA):
        choose_balance([trial], "five")
    q = np.asarray(trial.q, dtype=np.float64)
    qd, qdd = noncausal_derivatives(q, trial.rate_hz)
    index = [COORDINATES.index(c) for c in options.balanced]
    gain, passive = force_factors(subject, q, qd)
    return TrialPhysics(
        q=q,
        qd=qd,
        qdd=qdd,
        required_torque=required_torques(trial, subject, qd, qdd, options),
        moment_arms=subject.moment_arms(q)[..., index],
        force_gain=gain,
        force_passive=passive,
        balanced=tuple(options.balanced),
    )
