"""Static optimisation: the conventional method the network replaces (Section II-C).

Per frame t, the muscles' activations a (M,) that minimise the effort of eq. (21)
while producing the generalised forces the motion requires:

    minimise  sum_n a_n^2
    subject to  R_t^T F_t(a) = tau_req,t     (eq. 17, the balanced coordinates)
                0.01 <= a_n <= 1             (the bounds of eq. 22)

with tau_req, R and the force factors from ``train.physics_targets``, the
module the physics loss uses too: by default the five coordinates hip
flexion, adduction and rotation, knee and ankle of the three-dimensional leg
(``train.dynamics3d``) wherever the trial holds them, else (or with
``--sagittal``) the paper's planar hip, knee and ankle.

Muscle force is affine in activation. With a rigid tendon the fibre length and
velocity follow from the kinematics alone (eqs. 19-20), so at a frame's fixed
kinematics F(a) = A * a + P (eq. 18): A = F_o f_a f_v cos(phi) the active force at
full activation, P = F_o f_p cos(phi) the passive force (``train.hill``). Each
frame is therefore a small convex quadratic programme in a.

Solver (and why). The equality constraint cannot always be met: a small set of
muscles (the paper's ten) leaves part of a real ankle or hip torque unbalanced. Like OpenSim's
"reserve" actuators, each joint gets a residual torque rho_j that the muscles'
torque is allowed to miss, at a high cost:

    minimise  sum_n a_n^2 + sum_j (rho_j / reserve)^2,   rho = tau_req - R^T (A a + P)

Eliminating rho leaves a bounded linear least-squares problem in a alone,
|| [I; B / reserve] a - [0; (tau_req - R^T P) / reserve] ||^2 over the box, with
B = R^T diag(A), solved exactly (to round-off) by the bounded-variable
least-squares active-set method (scipy.optimize.lsq_linear, method "bvls").
With ``reserve`` = 1 N m (the optimal torque of OpenSim's weak residual actuators)
a frame the muscles can balance keeps a residual of the order of 0.01 N m (the
effort's marginal cost per N m times reserve^2); where they cannot, the muscles
saturate at their bounds and the residual is the torque they leave unbalanced,
reported per joint in N m instead of failing.

Kinematics: the trial's joint angles are low-pass filtered at 6 Hz by default
(``train.trial.TrialConfig.kinematics_cutoff_hz``), as OpenSim's static
optimisation of the reference trial filters its IK coordinates
(setup ``lowpass_cutoff_frequency_for_coordinates`` = 6), then differentiated
with the trial's best non-causal estimator (``train.trial.noncausal_derivatives``).

Passive force. OpenSim's static optimisation uses active force only, and with
good reason: with a rigid tendon, gait2392's tendon slack lengths stretch some
fibres far beyond optimal length (rect_fem_r to 1.9 l_o, tfl_r to 2.0 l_o in
this trial), where the passive curve gives kilonewtons (rect_fem_r ~7 kN), a
knee torque of 200+ N m no activation pattern can balance. ``include_passive``
therefore defaults to False (the muscles balance the torques with active force
A * a alone, as OpenSim's static optimisation does). Whatever it is, the
reported "force" is the muscle-tendon force of eq. (18), A * a + P, and
"active_force" the active part A * a, which is what OpenSim's static
optimisation reports and what its force file should be compared with.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import lsq_linear
from tqdm import tqdm

from calib.coordinates import ACTIVATION_MAX, ACTIVATION_MIN, COORDINATES
from calib.subject import Subject
from train.opensim_io import write_storage
from train.physics_targets import PhysicsOptions, trial_physics
from train.trial import LegTrial


class StaticOptimizationError(ValueError):
    """A static optimisation that cannot be set up; the message says what to change."""


@dataclass(frozen=True)
class StaticOptimizationConfig:
    """Settings of the static optimisation.

    ``min_activation``/``max_activation``: the bounds of eq. (22).
    ``reserve_torque_nm``: a joint's residual torque costs (rho / reserve)^2, in N m.
    ``include_passive``: whether passive fibre force helps balance the torques
    (False, as OpenSim's static optimisation; see the module docstring).
    ``balanced`` and ``base_motion``: as ``train.physics_targets.PhysicsOptions``.
    """

    min_activation: float = ACTIVATION_MIN
    max_activation: float = ACTIVATION_MAX
    reserve_torque_nm: float = 1.0
    include_passive: bool = False
    base_motion: bool = True
    balanced: tuple[str, ...] = COORDINATES

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_activation < self.max_activation:
            raise StaticOptimizationError(
                f"activation bounds must satisfy 0 <= min < max, got "
                f"[{self.min_activation}, {self.max_activation}]"
            )
        if not self.reserve_torque_nm > 0:
            raise StaticOptimizationError(
                f"reserve torque must be > 0 N m, got {self.reserve_torque_nm}"
            )


@dataclass(frozen=True)
class FrameProblems:
    """Everything the optimisation needs per frame, for N frames, M muscles, C coordinates.

    ``torque_per_activation`` (N, C, M) N m: B = R^T diag(A), the generalised forces of
    each muscle at full activation; ``passive_torque`` (N, C) N m: R^T P;
    ``required_torque`` (N, C) N m: tau_req; ``active_force_max`` (N, M) N: A;
    ``passive_force`` (N, M) N: P.
    """

    torque_per_activation: np.ndarray
    passive_torque: np.ndarray
    required_torque: np.ndarray
    active_force_max: np.ndarray
    passive_force: np.ndarray


@dataclass(frozen=True)
class StaticOptimizationResult:
    """Per frame: ``time`` (N,) s, ``activation`` (N, M), ``force`` (N, M) N (eq. 18),
    ``active_force`` (N, M) N, ``residual`` (N, C) N m (tau_req minus the muscles'
    torque), ``required_torque`` (N, C) N m of the ``balanced`` coordinates, and the
    solver's wall time in s."""

    time: np.ndarray
    activation: np.ndarray
    force: np.ndarray
    active_force: np.ndarray
    residual: np.ndarray
    required_torque: np.ndarray
    solve_seconds: float
    balanced: tuple[str, ...] = COORDINATES

    @property
    def n_frames(self) -> int:
        return int(self.time.shape[0])


def solve_frame(
    torque_per_activation: np.ndarray,
    offset_torque: np.ndarray,
    required_torque: np.ndarray,
    config: StaticOptimizationConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """One frame: activations (M,) and residual torque (C,) N m.

    Muscle torque = ``torque_per_activation`` (C, M) @ a + ``offset_torque`` (C,);
    minimises sum a^2 + sum (residual / reserve)^2 over the activation bounds.
    """
    b = np.asarray(torque_per_activation, dtype=np.float64)
    n_muscles = b.shape[1]
    weight = 1.0 / config.reserve_torque_nm
    target = np.asarray(required_torque, dtype=np.float64) - offset_torque
    design = np.vstack([np.eye(n_muscles), b * weight])
    rhs = np.concatenate([np.zeros(n_muscles), target * weight])
    solution = lsq_linear(
        design, rhs, bounds=(config.min_activation, config.max_activation), method="bvls"
    )
    activation = np.clip(solution.x, config.min_activation, config.max_activation)
    return activation, target - b @ activation


def frame_problems(
    moment_arms: np.ndarray,
    active_force_max: np.ndarray,
    passive_force: np.ndarray,
    required_torque: np.ndarray,
    include_passive: bool = False,
) -> FrameProblems:
    """Muscle torque as an affine function of activation at each frame (eq. 17).

    ``moment_arms`` (N, M, C) m, ``active_force_max`` A and ``passive_force`` P (N, M) N,
    ``required_torque`` (N, C) N m.
    """
    balancing = passive_force if include_passive else np.zeros_like(passive_force)
    return FrameProblems(
        torque_per_activation=np.einsum("nmj,nm->njm", moment_arms, active_force_max),
        passive_torque=np.einsum("nmj,nm->nj", moment_arms, balancing),
        required_torque=np.asarray(required_torque, dtype=np.float64),
        active_force_max=active_force_max,
        passive_force=passive_force,
    )


def static_optimization(
    subject: Subject,
    trial: LegTrial,
    config: StaticOptimizationConfig | None = None,
    start_s: float | None = None,
    end_s: float | None = None,
    progress: bool = False,
) -> StaticOptimizationResult:
    """Static optimisation of every trial frame in [start_s, end_s]."""
    config = config or StaticOptimizationConfig()
    physics = trial_physics(
        trial, subject, PhysicsOptions(balanced=config.balanced, base_motion=config.base_motion)
    )
    lo = -np.inf if start_s is None else start_s - 1e-9
    hi = np.inf if end_s is None else end_s + 1e-9
    frames = np.flatnonzero((trial.time >= lo) & (trial.time <= hi))
    if frames.size == 0:
        raise StaticOptimizationError(
            f"no frame of the trial ({trial.time[0]:.3f}-{trial.time[-1]:.3f} s) lies in "
            f"the requested span {start_s}-{end_s} s"
        )
    problems = frame_problems(
        physics.moment_arms[frames],
        physics.force_gain[frames],
        physics.force_passive[frames],
        physics.required_torque[frames],
        config.include_passive,
    )
    activation = np.empty((frames.size, len(subject.muscles)))
    residual = np.empty((frames.size, len(config.balanced)))
    started = time.perf_counter()
    for k in tqdm(
        range(frames.size), desc="static optimisation", unit="frame", disable=not progress
    ):
        activation[k], residual[k] = solve_frame(
            problems.torque_per_activation[k],
            problems.passive_torque[k],
            problems.required_torque[k],
            config,
        )
    solve_seconds = time.perf_counter() - started
    active_force = problems.active_force_max * activation
    return StaticOptimizationResult(
        time=trial.time[frames].copy(),
        activation=activation,
        force=active_force + problems.passive_force,
        active_force=active_force,
        residual=residual,
        required_torque=problems.required_torque,
        solve_seconds=solve_seconds,
        balanced=tuple(config.balanced),
    )


def residual_columns(side: str, balanced: tuple[str, ...] = COORDINATES) -> tuple[str, ...]:
    """Column names of the residual torques, after the leg's OpenSim coordinates."""
    return tuple(f"{name}_{side}_residual" for name in balanced)


def write_results(
    prefix: str | Path, result: StaticOptimizationResult, muscles: tuple[str, ...], side: str
) -> list[Path]:
    """PREFIX_activation.sto, _force.sto, _active_force.sto and _residual.sto."""
    prefix = str(prefix)
    outputs = [
        ("activation", muscles, result.activation, "muscle activation (0-1)"),
        ("force", muscles, result.force, "muscle-tendon force (N), eq. (18)"),
        ("active_force", muscles, result.active_force, "active muscle force (N)"),
        (
            "residual",
            residual_columns(side, result.balanced),
            result.residual,
            "unbalanced generalised force (N m)",
        ),
    ]
    written = []
    for suffix, columns, data, what in outputs:
        written.append(
            write_storage(
                f"{prefix}_{suffix}.sto",
                result.time,
                columns,
                data,
                name=f"StaticOptimization_{suffix}",
                description=f"Static optimisation (train-so): {what}.",
            )
        )
    return written


def print_report(
    result: StaticOptimizationResult, total_s: float, written: list[Path], side: str
) -> None:
    n = result.n_frames
    print(
        f"{n} frames {result.time[0]:.3f}-{result.time[-1]:.3f} s: "
        f"{1e3 * total_s / n:.2f} ms per frame in all "
        f"({1e3 * result.solve_seconds / n:.2f} ms solving), {total_s:.2f} s"
    )
    for name, column in zip(residual_columns(side, result.balanced), result.residual.T):
        print(
            f"  residual {name}: RMS {np.sqrt(np.mean(column**2)):.2f} N m, "
            f"max |.| {np.max(np.abs(column)):.2f} N m"
        )
    for path in written:
        print(f"  wrote {path}")


if __name__ == "__main__":  # python -m train.static_optimization: the same command as train.cli.so
    from train.cli.so import main

    raise SystemExit(main())
