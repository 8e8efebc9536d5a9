"""The physics-informed loss hits its textbook values (eqs. 15-22)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from train import losses
from train.hill import forces_from_gains, generalized_forces


def _problem(batch=5, muscles=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    moment_arms = 0.05 * torch.randn(batch, muscles, 3, generator=g, dtype=torch.float64)
    gain = 500 + 1000 * torch.rand(batch, muscles, generator=g, dtype=torch.float64)
    passive = 50 * torch.rand(batch, muscles, generator=g, dtype=torch.float64)
    activation = 0.05 + 0.9 * torch.rand(batch, muscles, generator=g, dtype=torch.float64)
    return moment_arms, gain, passive, activation


def test_bounds_loss_zero_inside_quadratic_outside():
    inside = torch.tensor([[0.01, 0.5, 1.0]])
    assert losses.bounds_loss(inside).item() == 0.0
    for delta in (0.001, 0.1, 2.0):
        low = torch.tensor([[0.01 - delta]], dtype=torch.float64)
        high = torch.tensor([[1.0 + delta]], dtype=torch.float64)
        assert losses.bounds_loss(low).item() == pytest.approx(delta**2)
        assert losses.bounds_loss(high).item() == pytest.approx(delta**2)
    both = torch.tensor([[-0.09, 1.2], [0.5, 0.5]], dtype=torch.float64)
    assert losses.bounds_loss(both).item() == pytest.approx((0.1**2 + 0.2**2) / 2)


def test_effort_loss_is_mean_over_samples_of_sum_of_squares():
    a = torch.tensor([[0.1, 0.2, 0.3], [1.0, 0.0, 0.0]], dtype=torch.float64)
    assert losses.effort_loss(a).item() == pytest.approx((0.01 + 0.04 + 0.09 + 1.0) / 2)


def test_dynamics_loss_zero_when_muscles_produce_the_required_torque():
    moment_arms, gain, passive, activation = _problem()
    forces = forces_from_gains(activation, gain, passive)
    required = torch.einsum("bmj,bm->bj", moment_arms, forces)
    torque = generalized_forces(forces, moment_arms)
    assert losses.dynamics_loss(torque, required).item() == pytest.approx(0.0, abs=1e-20)
    offset = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    assert losses.dynamics_loss(torque, required + offset).item() == pytest.approx(14.0)
    rmse = losses.torque_rmse_nm(torque, required + offset)
    assert torch.allclose(rmse, offset.abs())


def test_total_is_the_weighted_sum_with_the_paper_weights():
    moment_arms, gain, passive, activation = _problem()
    required = torch.randn(5, 3, dtype=torch.float64) * 20
    activation = activation.clone()
    activation[0, 0] = 1.3  # one bound violation
    parts = losses.physics_informed_loss(activation, gain, passive, moment_arms, required)
    weights = losses.LossWeights()
    assert (weights.dynamics, weights.effort, weights.bounds) == (3.0, 1000.0, 500.0)
    expected = 3.0 * parts["dynamics"] + 1000.0 * parts["effort"] + 500.0 * parts["bounds"]
    assert parts["total"].item() == pytest.approx(expected.item())
    assert parts["bounds"].item() == pytest.approx(0.3**2 / 5)
    with pytest.raises(ValueError, match="effort"):
        losses.LossWeights(effort=-1.0)


def test_supervised_loss_is_mse():
    a = torch.tensor([[0.2, 0.4]])
    labels = torch.tensor([[0.1, 0.6]])
    assert losses.supervised_loss(a, labels).item() == pytest.approx((0.01 + 0.04) / 2)


def test_minimising_the_loss_over_activations_approaches_static_optimisation():
    """Gradient descent on a alone: torque residual small, activations near min-norm."""
    moment_arms, gain, passive, _ = _problem(batch=1, muscles=6, seed=3)
    b = torch.einsum("bmj,bm->bjm", moment_arms, gain)[0]  # (3, M) N m per activation
    target_activation = torch.full((6,), 0.3, dtype=torch.float64)
    required = (b @ target_activation + torch.einsum("mj,m->j", moment_arms[0], passive[0]))[None]
    a = torch.full((1, 6), 0.5, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([a], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        total = losses.physics_informed_loss(a, gain, passive, moment_arms, required)["total"]
        total.backward()
        return total

    optimizer.step(closure)
    parts = losses.physics_informed_loss(a.detach(), gain, passive, moment_arms, required)
    # min-norm solution of b a = tau - R^T P (bounds inactive for this problem)
    rhs = required[0] - torch.einsum("mj,m->j", moment_arms[0], passive[0])
    min_norm = torch.linalg.pinv(b) @ rhs
    assert parts["dynamics"].item() ** 0.5 < 0.05 * rhs.norm().item()
    assert torch.allclose(a.detach()[0], min_norm, atol=0.05)


def test_augmented_lagrangian_with_zero_multipliers_is_eq_15():
    moment_arms, gain, passive, activation = _problem()
    required = torch.randn(5, 3, dtype=torch.float64) * 20
    fixed = losses.physics_informed_loss(activation, gain, passive, moment_arms, required)
    zero = torch.zeros(5, 3, dtype=torch.float64)
    constrained = losses.physics_informed_loss(
        activation, gain, passive, moment_arms, required, multipliers=zero
    )
    assert constrained["total"].item() == pytest.approx(fixed["total"].item(), rel=1e-12)
    # a multiplier adds lambda . r per sample, averaged over the batch
    torque = generalized_forces(forces_from_gains(activation, gain, passive), moment_arms)
    ones = torch.ones(5, 3, dtype=torch.float64)
    shifted = losses.physics_informed_loss(
        activation, gain, passive, moment_arms, required, multipliers=ones
    )
    expected = fixed["total"] + (torque - required).sum(dim=-1).mean()
    assert shifted["total"].item() == pytest.approx(expected.item(), rel=1e-12)


def test_multipliers_rise_where_muscles_overshoot_and_fall_where_they_fall_short():
    multipliers = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    residual = torch.tensor([[30.0, -10.0], [0.0, 5.0]])  # N m: tau_h - tau_req
    raised = losses.updated_multipliers(multipliers, residual, step=6.0)
    torch.testing.assert_close(raised, torch.tensor([[180.0, -59.0], [2.0, 29.0]]))
    # the raised multiplier makes the overshoot costlier: the loss's gradient on the
    # torque grows by lambda, pushing it back towards the requirement
    torque = torch.tensor([[130.0, 40.0]], requires_grad=True)
    required = torch.tensor([[100.0, 50.0]])
    for lam, sign in ((torch.zeros(1, 2), None), (raised[:1], 1.0)):
        torque.grad = None
        losses.augmented_lagrangian_dynamics(torque, required, lam, 6.0).backward()
        if sign is None:
            base = torque.grad.clone()
    torch.testing.assert_close(torque.grad - base, raised[:1])


def _constrained_problem():
    moment_arms, gain, passive, _ = _problem(batch=1, muscles=6, seed=3)
    b = torch.einsum("bmj,bm->bjm", moment_arms, gain)[0]
    target = torch.full((6,), 0.3, dtype=torch.float64)
    required = (b @ target + torch.einsum("mj,m->j", moment_arms[0], passive[0]))[None]
    rhs = required[0] - torch.einsum("mj,m->j", moment_arms[0], passive[0])
    return moment_arms, gain, passive, required, _constrained_optimum(b.numpy(), rhs.numpy())


def _constrained_optimum(b, rhs):
    """min w_p sum a^2 + w_b L_b(a) subject to b a = rhs, by SciPy's SLSQP (an independent
    solver: the equality is a constraint there, not a penalty)."""
    from scipy.optimize import minimize

    weights = losses.LossWeights()

    def cost(a):
        below, above = np.maximum(0.01 - a, 0), np.maximum(a - 1, 0)
        return weights.effort * a @ a + weights.bounds * (below @ below + above @ above)

    result = minimize(cost, np.full(b.shape[1], 0.3), method="SLSQP", tol=1e-14,
                      constraints={"type": "eq", "fun": lambda a: b @ a - rhs})  # fmt: skip
    assert result.success
    return torch.as_tensor(result.x)


def _minimise(moment_arms, gain, passive, required, weights, multipliers=None):
    a = torch.full((1, 6), 0.5, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([a], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        total = losses.physics_informed_loss(
            a, gain, passive, moment_arms, required, weights, multipliers=multipliers
        )["total"]
        total.backward()
        return total

    optimizer.step(closure)
    return a.detach()


@pytest.mark.slow
def test_the_method_of_multipliers_reaches_the_constrained_optimum_whatever_w_d():
    """Static optimisation's min sum a^2 subject to the balance (here with eq. 22's penalty
    too, since the problem's optimum leaves the bounds): the fixed penalty leaves torque
    unbalanced; multiplier updates (each after an inner minimisation, as fit does per epoch)
    balance it and land on the constrained optimum, for two w_d ten times apart."""
    moment_arms, gain, passive, required, optimum = _constrained_problem()
    for w_d in (0.3, 3.0):
        weights = losses.LossWeights(dynamics=w_d)
        fixed = _minimise(moment_arms, gain, passive, required, weights)
        torque = generalized_forces(forces_from_gains(fixed, gain, passive), moment_arms)
        fixed_residual = (torque - required).norm().item()
        assert fixed_residual > 0.02 * required.norm().item(), fixed_residual
        multipliers = torch.zeros(1, 3, dtype=torch.float64)
        for _ in range(100):
            a = _minimise(moment_arms, gain, passive, required, weights, multipliers)
            torque = generalized_forces(forces_from_gains(a, gain, passive), moment_arms)
            multipliers = losses.updated_multipliers(multipliers, torque - required, 2 * w_d)
        assert (torque - required).norm().item() < 1e-3 * fixed_residual
        torch.testing.assert_close(a[0], optimum, atol=1e-3, rtol=0)
        assert (fixed[0] - optimum).abs().max() > 1e-2
