"""The physics-informed loss (paper Section II-C, eqs. 15-22) and the supervised MSE.

Every quantity that does not depend on the network's output is precomputed per
sample by ``train.windows`` (rigid tendon => the muscle-tendon force is affine
in activation, F = A * a + P, eq. 18), so one loss evaluation is a handful of
batched products:

    tau_h    = R^T F                      eq. (17), (B, C) N m, C balanced coordinates
    L_d      = mean_b || tau_h - tau_req ||^2          eq. (16)
    L_p      = mean_b sum_n a^2                         eq. (21)
    L_b      = mean_b sum_n [max(0, a_min - a)^2 + max(0, a - a_max)^2]   eq. (22)
    L_total  = w_d L_d + w_p L_p + w_b L_b              eq. (15)

where tau_req = M(q) q'' + C(q, q') q' + G(q) - tau_grf (eq. 16 with
tau_e = tau_grf, eq. 24) is the torque the muscles must supply, F and tau_h are
``train.hill``'s ``forces_from_gains`` and ``generalized_forces``, and [a_min, a_max]
the activation bounds of ``calib.coordinates`` (0.01 and 1).

Torque normalisation of L_d (the paper does not state one): raw N m. Why:
with w_d = 3 and w_p = 1000, minimising w_d ||G a - b||^2 + w_p ||a||^2 (G the
3 x M torque-per-activation matrix, entries ~ moment arm 0.02-0.06 m x
max force 500-5000 N = 10-300 N m) is a ridge regression with
lambda = w_p / w_d = 333 (N m)^2. G's squared singular values are of order
1e3-1e4 (N m)^2 for a walking adult (docs/training.md has them for a measured
trial), so a direction with squared gain g^2 keeps a fraction lambda / (lambda + g^2)
of its required torque unbalanced, a few per cent: the network lands close to
static optimisation (min sum a^2 with the torques balanced), which is what the
paper reports. Any normalisation that shrinks torques (per body mass, or per
m g leg length ~ 700 N m) divides those squared singular values by 5e3-5e5 and
lets the effort term win:
activations collapse towards zero and the torques go unbalanced. Raw N m is
also what the paper's subjects (68-73 kg) imply for its grid-searched
weights. ``torque_rmse_nm`` reports the residual in N m.

Automatic weighting (``LOSS_WEIGHTINGS``): the paper names the grid search of
w_d, w_p, w_b as its weakness. Static optimisation, which the network is meant to
reproduce, is a constrained problem: min sum_n a^2 subject to tau_h = tau_req. The
``"augmented_lagrangian"`` weighting (Hestenes-Powell method of multipliers, as in
the constrained physics-informed networks of Lu et al. 2021 and Basir & Senocak
2022) replaces w_d L_d by

    L_d^AL = mean_b [ lambda_b . r_b + (mu / 2) || r_b ||^2 ],   r_b = tau_h - tau_req

with one multiplier vector lambda_b (C,) per training sample, raised after every
epoch by lambda_b <- lambda_b + eta r_b (``updated_multipliers``; ``train.training_loop``
says which step eta). With mu = 2 w_d
and every lambda_b = 0 the loss is eq. (15) exactly; as the multipliers grow, the
torque left to the effort trade-off (the few per cent above) goes to zero wherever the
muscles can balance it, and the solution no longer depends on w_d. Why this and
not uncertainty weighting (Kendall et al. 2018): eliminating its learned
variances turns the loss into log L_d + log L_p, whose implied ratio
w_p / w_d = L_d / L_p has its interior fixed point unstable for a ridge problem
like this one (for one direction of G with squared gain g^2, the ratio maps to
lambda^2 / g^2), so it drifts either to exact balance or to all-floor
activations depending on where it starts; the multiplier method has the constrained
optimum as its stable fixed point.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from calib.coordinates import ACTIVATION_MAX, ACTIVATION_MIN
from train.hill import forces_from_gains, generalized_forces
from train.options import PAPER_LOSS_WEIGHTS

"""How eq. (15)'s terms are weighted: the fixed w_d, w_p, w_b, or the dynamics term as
a constraint with multipliers (module doc)."""


@dataclass(frozen=True)
class LossWeights:
    """Weights of eq. (15), Section III-C2 defaults."""

    dynamics: float = PAPER_LOSS_WEIGHTS[0]
    effort: float = PAPER_LOSS_WEIGHTS[1]
    bounds: float = PAPER_LOSS_WEIGHTS[2]

    def __post_init__(self) -> None:
        for name in ("dynamics", "effort", "bounds"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"loss weight {name} must be >= 0, got {value}")


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


def augmented_lagrangian_dynamics(
    muscle_torque: torch.Tensor,
    required_torque: torch.Tensor,
    multipliers: torch.Tensor,
    penalty: float,
) -> torch.Tensor:
    """The dynamics term of the augmented Lagrangian (module doc):
    mean_b [lambda_b . r_b + (penalty / 2) ||r_b||^2] with r_b = tau_h - tau_req.

    ``multipliers`` (B, C) lambda per sample and balanced coordinate, 1 / (N m) in units
    of the loss; ``penalty`` mu in 1 / (N m)^2. Gradients flow through the torques only.
    """
    residual = muscle_torque - required_torque
    linear = (multipliers.detach() * residual).sum(dim=-1)
    return (linear + 0.5 * penalty * (residual**2).sum(dim=-1)).mean()


def updated_multipliers(
    multipliers: torch.Tensor, residual: torch.Tensor, step: float
) -> torch.Tensor:
    """The method of multipliers' update lambda + eta r (r = tau_h - tau_req, (N, C) N m;
    the textbook step eta is the penalty mu):
    a sample whose muscles give too much torque about a coordinate gets a larger lambda,
    which makes that excess costlier in the next epochs, and too little a smaller one."""
    return multipliers + step * residual


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
    multipliers: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Eq. (15) and its parts: keys ``total``, ``dynamics``, ``effort``, ``bounds`` (the
    parts unweighted).

    ``bounded``: what L_b (eq. 22) keeps inside the bounds when it is not the activation
    itself: a "clamped" network's raw output (``train.model``), whose clamp the
    activation already is. ``multipliers`` (B, C): the samples' multipliers of the
    augmented Lagrangian; then ``total`` has ``augmented_lagrangian_dynamics`` with
    penalty 2 w_d in place of w_d L_d (equal to it where the multipliers are 0).
    """
    forces = forces_from_gains(activation, force_gain, force_passive)
    torque = generalized_forces(forces, moment_arms)
    parts = {
        "dynamics": dynamics_loss(torque, required_torque),
        "effort": effort_loss(activation),
        "bounds": bounds_loss(activation if bounded is None else bounded),
    }
    dynamics = (
        weights.dynamics * parts["dynamics"]
        if multipliers is None
        else augmented_lagrangian_dynamics(
            torque, required_torque, multipliers, 2.0 * weights.dynamics
        )
    )
    parts["total"] = dynamics + weights.effort * parts["effort"] + weights.bounds * parts["bounds"]
    return parts
