"""The training loop: per epoch, batches -> forward -> losses by name (``train.losses``) ->
backward -> AdamW step; then the cosine schedule, the augmented Lagrangian's multipliers,
validation, the log, the checkpoint, and the convergence rule that ends training.

Choices the paper leaves open, and why:

- Weight decay is decoupled (AdamW, ``make_optimizer``). Coupled L2 decay inside Adam
  would weigh 0.01 * |w|^2 against a loss whose scale differs by six orders of magnitude
  between the physics-informed loss ((N m)^2) and the supervised MSE; decoupled decay
  shrinks the weights by the same 0.01 * lr per step in both modes.
- The schedule steps once per epoch (cosine over ``epochs``, down to
  ``final_learning_rate_fraction`` of the initial rate).
- The paper trains 500 epochs; here training stops by ``converged``: the physics-informed
  loss on the validation windows improved by less than ``min_improvement`` (1 %) over
  the last ``patience`` (150) epochs, at most after ``epochs`` (1000), the cap the cosine
  schedule spans. docs/training.md has the measurements behind these numbers.
- The device (``train.device``): the model and every window's inputs and physics targets
  are on it before the first epoch; an epoch then runs without a host-device copy per
  step (the batch order is on the device, the logged losses are summed there and read
  once per epoch). ``precision`` bf16/fp16 runs the network's forward pass under
  autocast and the physics-informed loss in fp32 (``train.device`` says why); validation
  and the final metrics run in fp32, as the exported network does.
- Loss weighting (``loss_weighting``): "fixed" (the paper's w_d, w_p, w_b) or
  "augmented_lagrangian" (``train.losses``' module doc): every training window carries a
  multiplier per balanced coordinate, raised after each epoch from the whole training
  set's torque residual in eval mode (``raise_multipliers``: one extra forward pass per
  epoch); the multipliers are saved in the checkpoint. Validation windows have no
  multipliers: their ``total`` is eq. (15) with the fixed weights. The step is
  ``multiplier_step`` = 0.1 of the penalty mu, not mu itself (the textbook step after an
  inner minimisation solved exactly): one epoch of Adam leaves the network far from the
  inner optimum, so a full step raises the multipliers faster than the network can follow.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from train import losses
from train.checkpoints import History, InterruptCheckpoint, checkpoint_state, write_checkpoint
from train.dataset import perturb_inputs
from train.device import autocast, grad_scaler, no_tf32
from train.distributed import Distributed, epoch_means
from train.fit_config import TrainingConfig
from train.hill import forces_from_gains, generalized_forces
from train.model import clamped_activation


def make_optimizer(model: torch.nn.Module, config: TrainingConfig) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay, see the module doc); the fused kernel where torch has it.

    The fused CPU kernel (torch >= 2.4) halves the step time of this small network; on
    CUDA it also takes fp16's loss scale without a host round trip. Other devices (the
    meta device of the tests) take the plain one.
    """
    rate, decay = config.learning_rate, config.weight_decay
    fused = next(model.parameters()).device.type in ("cpu", "cuda")
    try:
        return torch.optim.AdamW(model.parameters(), lr=rate, weight_decay=decay, fused=fused)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(model.parameters(), lr=rate, weight_decay=decay)


def cosine_schedule(
    optimizer: torch.optim.Optimizer, config: TrainingConfig
) -> torch.optim.lr_scheduler.CosineAnnealingLR:
    """Cosine annealing over ``config.epochs`` down to ``final_learning_rate_fraction``."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer,
        T_max=config.epochs,
        eta_min=config.learning_rate * config.final_learning_rate_fraction,
    )


def batch_losses(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], config: TrainingConfig
) -> dict[str, torch.Tensor]:
    """Forward one batch; ``total`` is what is minimised, the rest is logged.

    A "clamped" network (``train.model``) returns its raw output in training mode: the
    physics sees its clamp into the bounds and L_b the raw output. The forward pass runs
    in ``config.precision``, the losses in fp32 (``train.device``).
    """
    with autocast(config.precision, batch["inputs"].device):
        output = model(batch["inputs"])
    output = output.float()
    network: Any = getattr(model, "module", model)  # the network inside a DDP wrapper
    clamped = network.config.output == "clamped"
    activation = clamped_activation(output) if clamped else output
    parts = losses.physics_informed_loss(
        activation,
        batch["force_gain"],
        batch["force_passive"],
        batch["moment_arms"],
        batch["required_torque"],
        config.loss_weights,
        bounded=output if clamped else None,
        multipliers=batch.get("multipliers"),
    )
    # The labels lie inside the bounds: the raw output fits them without a clamp's dead zone.
    if config.mode == "supervised":
        parts["physics"] = parts["total"]
        parts["total"] = losses.supervised_loss(output, batch["labels"])
    elif "labels" in batch:
        parts["supervised"] = losses.supervised_loss(output, batch["labels"])
    return parts


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, tensors: dict[str, torch.Tensor], config: TrainingConfig
) -> tuple[dict[str, float], np.ndarray]:
    """Mean loss components over a whole set (eval mode, fp32) and the predicted activations."""
    was_training = model.training
    model.eval()
    with no_tf32(tensors["inputs"].device):
        parts = batch_losses(model, tensors, replace(config, precision="fp32"))
        activation = model(tensors["inputs"]).cpu().numpy()
    model.train(was_training)
    return {k: float(v) for k, v in parts.items()}, activation


@torch.no_grad()
def raise_multipliers(
    model: torch.nn.Module, tensors: dict[str, torch.Tensor], config: TrainingConfig
) -> None:
    """The augmented Lagrangian's update of ``tensors["multipliers"]`` (in place) from the
    torque residual of every window of ``tensors`` in eval mode (``losses.updated_multipliers``)."""
    was_training = model.training
    model.eval()
    activation = model(tensors["inputs"])
    model.train(was_training)
    forces = forces_from_gains(activation, tensors["force_gain"], tensors["force_passive"])
    residual = generalized_forces(forces, tensors["moment_arms"]) - tensors["required_torque"]
    step = config.multiplier_step * 2.0 * config.weight_dynamics
    tensors["multipliers"].copy_(losses.updated_multipliers(tensors["multipliers"], residual, step))


def train_epoch(
    model: torch.nn.Module,
    tensors: dict[str, torch.Tensor],
    order: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    config: TrainingConfig,
    noise: torch.Generator | None = None,
    rate_hz: float = 100.0,
) -> dict[str, torch.Tensor]:
    """One pass over the windows ``order`` lists, ``config.batch_size`` per step: forward,
    losses by name, backward, optimiser step. Returns each logged loss's mean over the
    steps as a 0-dim tensor on the windows' device.

    ``tensors``, ``order``, the model and ``noise`` live on one device and nothing here
    copies to or from the host: no ``.item()``, no tensor made from host data per step.
    """
    steps = math.ceil(order.numel() / config.batch_size)
    sums: dict[str, torch.Tensor] = {}
    with no_tf32(order.device):
        for step in range(steps):
            index = order[step * config.batch_size : (step + 1) * config.batch_size]
            batch = {name: tensor[index] for name, tensor in tensors.items()}
            batch = perturb_inputs(batch, config.input_noise_deg, rate_hz, noise)
            parts = batch_losses(model, batch, config)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(parts["total"]).backward()
            scaler.step(optimizer)
            scaler.update()
            for name, value in parts.items():
                logged = value.detach().to(torch.float64)
                sums[name] = sums[name] + logged if name in sums else logged
    return {name: total / steps for name, total in sums.items()}


def run_epochs(
    model: torch.nn.Module,
    trained: torch.nn.Module,
    tensors: dict[str, torch.Tensor],
    validation: dict[str, torch.Tensor] | None,
    sampler: DistributedSampler[int],
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    config: TrainingConfig,
    world: Distributed,
    rate_hz: float,
    checkpoint_path: Path,
    history: History,
    progress: bool = True,
    interrupt: InterruptCheckpoint | None = None,
) -> str:
    """Train from the epoch after ``history``'s last to ``config.epochs`` or until
    ``converged``, appending each epoch's log to ``history``; returns what stopped it.

    ``model`` the network, ``trained`` the module the steps run (``model`` or its DDP
    wrapper, ``train.distributed.data_parallel``); ``tensors`` the training windows
    (``train.dataset.TrainingData.tensors``), with ``multipliers`` for the augmented
    Lagrangian; ``validation`` the held-out windows or None. Rank 0 writes the
    checkpoint every ``config.checkpoint_every`` epochs, at the cap and at the stop; with
    ``interrupt``, every completed epoch is recorded for Ctrl-C
    (``train.checkpoints.InterruptCheckpoint``).
    """
    first_epoch = len(history)
    device = tensors["inputs"].device
    bar = tqdm(
        range(first_epoch, config.epochs),
        initial=first_epoch,
        total=config.epochs,
        desc="train-fit",
        unit="epoch",
        disable=not (progress and world.is_main),
        dynamic_ncols=True,
    )
    noise = None
    if config.input_noise_deg > 0:
        noise = torch.Generator(device=device).manual_seed(config.seed + world.rank)
    scaler = grad_scaler(config.precision, device)
    if interrupt is not None:
        interrupt.bind(checkpoint_path, model, optimizer, schedule, config, world.is_main, tensors)
        interrupt.record(first_epoch, history)
    stopped = f"the cap of {config.epochs} epochs"
    trained.train()
    for epoch in bar:
        epoch_started = time.perf_counter()
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler), dtype=torch.int64, device=device)
        sums = train_epoch(trained, tensors, order, optimizer, scaler, config, noise, rate_hz)
        schedule.step()
        record = epoch_means({f"train_{k}": v for k, v in sums.items()}, world)
        if "multipliers" in tensors:
            raise_multipliers(model, tensors, config)
            record["multiplier_rms"] = float(tensors["multipliers"].pow(2).mean().sqrt())
        if validation is not None:
            parts, _ = evaluate(model, validation, config)
            record.update({f"validation_{k}": v for k, v in parts.items()})
        record["epoch"] = epoch + 1
        record["learning_rate"] = float(schedule.get_last_lr()[0])
        record["seconds"] = time.perf_counter() - epoch_started
        history.append(record)
        bar.set_postfix(progress_postfix(record, config.mode), refresh=False)
        stop = converged(history, config)
        if world.is_main and (
            (epoch + 1) % config.checkpoint_every == 0 or epoch + 1 == config.epochs or stop
        ):
            state = checkpoint_state(
                model, optimizer, schedule, epoch + 1, history, config, tensors
            )
            write_checkpoint(checkpoint_path, state)
        if interrupt is not None:
            interrupt.record(epoch + 1, history)
        if stop:
            stopped = convergence_reason(history, config)
            break
    bar.close()
    return stopped


def progress_postfix(record: dict[str, float], mode: str) -> dict[str, str]:
    """The progress bar's short names and values of an epoch's ``record``."""
    keys = ["total", "dynamics", "effort", "bounds"] + (["physics"] if mode == "supervised" else [])
    shown = {k[:3] if k != "total" else "loss": f"{record[f'train_{k}']:.3g}" for k in keys}
    if "validation_total" in record:
        shown["val"] = f"{record['validation_total']:.3g}"
    return shown


def physics_loss_key(history: History, mode: str) -> str:
    """The logged physics-informed loss ``converged`` watches: the validation set's where
    there is one, else the training set's."""
    name = "total" if mode == "pi" else "physics"
    return f"validation_{name}" if f"validation_{name}" in history[-1] else f"train_{name}"


def converged(history: History, config: TrainingConfig) -> bool:
    """True when the last ``config.patience`` epochs lowered the best physics loss
    (``physics_loss_key``) by less than ``config.min_improvement`` of it: the best of
    those epochs > (1 - min_improvement) x the best before them. Never with patience 0."""
    if config.patience == 0 or len(history) <= config.patience:
        return False
    key = physics_loss_key(history, config.mode)
    values = [record[key] for record in history]
    best_before = min(values[: -config.patience])
    return min(values[-config.patience :]) > (1.0 - config.min_improvement) * best_before


def convergence_reason(history: History, config: TrainingConfig) -> str:
    """Why ``converged`` stopped training, for the log and ``metrics.json``'s ``stopped_by``."""
    key = physics_loss_key(history, config.mode)
    return (
        f"convergence at epoch {len(history)}: {key.replace('_', ' ')} improved by less than "
        f"{100 * config.min_improvement:g} % over the last {config.patience} epochs"
    )
