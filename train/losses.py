"""The physics-informed loss (paper Section II-C, eqs. 15-22) and the supervised MSE.

Every quantity that does not depend on the network's output is precomputed per
sample by ``train.windows`` (rigid tendon => the muscle-tendon force is affine
in activation, F = A * a + P, eq. 18), so one loss evaluation is a handful of
batched products:

    tau_h    = R^T F                      eq. (17), (B, C) N m, C balanced coordinates
    L_d      = mean_b || tau_h - tau_req ||^2          eq. (16)
    L_p      = mean_b sum_n a^2                         eq. (21)
    L_b      = mean_b sum_n [max(0, 0.01 - a)^2 + max(0, a - 1)^2]   eq. (22)
    L_total  = w_d L_d + w_p L_p + w_b L_b              eq. (15)

where tau_req = M(q) q'' + C(q, q') q' + G(q) - tau_grf (eq. 16 with
tau_e = tau_grf, eq. 24) is the torque the muscles must supply.

Torque normalisation of L_d (the paper does not state one): raw N m. Why:
with w_d = 3 and w_p = 1000, minimising w_d ||G a - b||^2 + w_p ||a||^2 (G the
3 x M torque-per-activation matrix, entries ~ moment arm 0.02-0.06 m x
max force 500-5000 N = 10-300 N m) is a ridge regression with
lambda = w_p / w_d = 333 (N m)^2. On the subject01 walking trial with the
default ten muscles, G's squared singular values have medians of 22400, 9100
and 3400 (N m)^2 (strongest to weakest direction), so lambda leaves about
1.5 %, 3.5 % and 9 % of the required torque unbalanced in those directions:
the network lands close to static optimisation (min sum a^2 with the torques
balanced), which is what the paper reports. Any normalisation that shrinks
torques (per body mass, or per m g leg length ~ 700 N m) divides those
squared singular values by 5e3-5e5 and lets the effort term win:
activations collapse towards zero and the torques go unbalanced. Raw N m is
also what the paper's subjects (68-73 kg) imply for its grid-searched
weights. ``torque_rmse_nm`` reports the residual in N m.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

ACTIVATION_MIN = 0.01
ACTIVATION_MAX = 1.0


@dataclass(frozen=True)
class LossWeights:
    """Weights of eq. (15), Section III-C2 defaults."""

    dynamics: float = 3.0
    effort: float = 1000.0
    bounds: float = 500.0

    def __post_init__(self) -> None:
        for name in ("dynamics", "effort", "bounds"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"loss weight {name} must be >= 0, got {value}")


def muscle_forces(
    activation: torch.Tensor, force_gain: torch.Tensor, force_passive: torch.Tensor
) -> torch.Tensor:
    """Muscle-tendon forces (B, M) in N, eq. (18) with a rigid tendon: F = A * a + P.

    ``force_gain`` A = F_o f_v f_a cos(phi) and ``force_passive`` P = F_o f_p cos(phi),
    both (B, M) N, evaluated at the sample's fibre length and velocity.
    """
    return force_gain * activation + force_passive


def muscle_torques(forces: torch.Tensor, moment_arms: torch.Tensor) -> torch.Tensor:
    """Generalised forces (B, C) in N m the muscles produce about the C balanced
    coordinates, eq. (17): tau_h = R^T F.

    ``moment_arms`` R is (B, M, C) m, OpenSim's sign (r = -dl/dq).
    """
    return torch.einsum("bmj,bm->bj", moment_arms, forces)


def dynamics_loss(muscle_torque: torch.Tensor, required_torque: torch.Tensor) -> torch.Tensor:
    """L_d, eq. (16): mean over samples of the squared torque residual summed over the
    balanced coordinates (N m)^2."""
    return ((muscle_torque - required_torque) ** 2).sum(dim=-1).mean()


def effort_loss(activation: torch.Tensor) -> torch.Tensor:
    """L_p, eq. (21): mean over samples of the sum of squared activations."""
    return (activation**2).sum(dim=-1).mean()


def bounds_loss(
    activation: torch.Tensor, low: float = ACTIVATION_MIN, high: float = ACTIVATION_MAX
) -> torch.Tensor:
    """L_b, eq. (22): zero inside [low, high], quadratic in the violation outside."""
    below = torch.clamp(low - activation, min=0.0)
    above = torch.clamp(activation - high, min=0.0)
    return (below**2 + above**2).sum(dim=-1).mean()


def supervised_loss(activation: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The supervised baseline's MSE (Section III-D1) against reference activations."""
    return torch.mean((activation - labels) ** 2)


def torque_rmse_nm(muscle_torque: torch.Tensor, required_torque: torch.Tensor) -> torch.Tensor:
    """Root mean square torque residual per balanced coordinate (C,) in N m, for the log."""
    return torch.sqrt(((muscle_torque - required_torque) ** 2).mean(dim=0))


def physics_informed_loss(
    activation: torch.Tensor,
    force_gain: torch.Tensor,
    force_passive: torch.Tensor,
    moment_arms: torch.Tensor,
    required_torque: torch.Tensor,
    weights: LossWeights = LossWeights(),
    bounded: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Eq. (15) and its parts: keys ``total``, ``dynamics``, ``effort``, ``bounds`` (unweighted parts).

    ``bounded``: what L_b (eq. 22) keeps inside the bounds when it is not the activation
    itself: a "clamped" network's raw output (``train.model``), whose clamp the
    activation already is.
    """
    forces = muscle_forces(activation, force_gain, force_passive)
    torque = muscle_torques(forces, moment_arms)
    parts = {
        "dynamics": dynamics_loss(torque, required_torque),
        "effort": effort_loss(activation),
        "bounds": bounds_loss(activation if bounded is None else bounded),
    }
    parts["total"] = (
        weights.dynamics * parts["dynamics"]
        + weights.effort * parts["effort"]
        + weights.bounds * parts["bounds"]
    )
    return parts
