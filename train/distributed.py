"""Training in several processes: ``torchrun --nproc_per_node=K`` starts K copies of
``train-fit``, and this module joins them into one process group (NCCL between GPUs, one
per process; gloo between CPUs) and averages what they log.

Each process takes ``batch_size`` windows per step from its ``DistributedSampler`` shard,
so the effective batch is K * batch_size; rank 0 alone writes the RUN. The learning rate
is not scaled with K: AdamW divides each step by the gradient's running RMS, so the step
size does not grow with a less noisy gradient the way SGD's linear scaling rule assumes;
an epoch has K times fewer steps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

from train.device import process_group_backend, resolve_device
from train.fit_config import TrainingConfig


@dataclass(frozen=True)
class Distributed:
    """This process's place among the training processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> tuple[int, int, int]:
    """(rank, local rank, world size) from torchrun's environment; (0, 0, 1) without it."""
    environ = os.environ
    return (
        int(environ.get("RANK", "0")),
        int(environ.get("LOCAL_RANK", "0")),
        int(environ.get("WORLD_SIZE", "1")),
    )


def training_device(requested: str | torch.device = "auto") -> torch.device:
    """The device this process trains on (``train.device.resolve_device``; under torchrun
    the GPU of its LOCAL_RANK)."""
    _, local_rank, world_size = launched_by_torchrun()
    return resolve_device(requested, local_rank, world_size)


def init_distributed(device: torch.device) -> Distributed:
    """Join the process group when started by torchrun (WORLD_SIZE > 1): NCCL for
    processes on GPUs (each on its own, set current first), gloo on CPUs."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=process_group_backend(device))
    return Distributed(rank=dist.get_rank(), world_size=dist.get_world_size())


def epoch_means(sums: dict[str, torch.Tensor], world: Distributed) -> dict[str, float]:
    """Per-process loss means (0-dim tensors on the training device) averaged over the
    processes and read to the host in one copy."""
    keys = sorted(sums)
    values = torch.stack([sums[k].to(torch.float64) for k in keys])
    if world.world_size > 1:
        dist.all_reduce(values)
        values = values / world.world_size
    return dict(zip(keys, values.tolist()))


def effective_batch_line(config: TrainingConfig, world: Distributed) -> str:
    """The effective batch and the learning-rate rule, as train-fit prints them."""
    processes = f"{world.world_size} processes" if world.world_size > 1 else "1 process"
    return (
        f"train-fit: effective batch {processes} x {config.batch_size} = "
        f"{world.world_size * config.batch_size} windows per step (gradients averaged); "
        f"learning rate {config.learning_rate:g} whatever the number of processes (AdamW: "
        "not scaled with the batch)"
    )


def data_parallel(
    model: torch.nn.Module, device: torch.device, world: Distributed
) -> torch.nn.Module:
    """``model`` wrapped for DistributedDataParallel where there are several processes
    (gradients averaged over them in ``backward``), else ``model`` itself."""
    if world.world_size == 1:
        return model
    return DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None
    )


def window_sampler(n_windows: int, world: Distributed, seed: int) -> DistributedSampler[int]:
    """This process's shuffled share of ``n_windows`` windows, a new order every epoch
    (``set_epoch``) drawn from ``seed``."""
    return DistributedSampler(
        range(n_windows),  # type: ignore[arg-type]  # the sampler reads only len(dataset)
        num_replicas=world.world_size,
        rank=world.rank,
        shuffle=True,
        seed=seed,
    )


def processes_note(world: Distributed) -> str:
    """ ", K processes (backend)" for train-fit's start line; nothing for one process."""
    if world.world_size == 1:
        return ""
    return f", {world.world_size} processes ({dist.get_backend()})"
