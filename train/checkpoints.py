"""Checkpoints of a training run: what one holds, writing it whole or not at all, loading it
for ``--resume``, and the checkpoint Ctrl-C writes.

A checkpoint (``RUN/checkpoint.pt``, ``train.run.CHECKPOINT_FILE``) holds the epoch, the
model, the optimiser and the schedule, the logged history, the training configuration,
torch's random state (and the GPU's on a GPU, for dropout's stream) and, with the
augmented Lagrangian, the training windows' multipliers: everything for a resumed run to
continue exactly as an uninterrupted one. It is written to a temporary file and renamed,
so a run killed while writing keeps the previous checkpoint.
"""

from __future__ import annotations

import copy
import json
import signal
import threading
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

import torch

from train.fit_config import FitError, TrainingConfig


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training, after the last completed epoch's checkpoint was written."""

    def __init__(self, epoch: int, epochs: int, checkpoint: Path) -> None:
        super().__init__(
            f"interrupted during epoch {epoch + 1} of at most {epochs}; the state after "
            f"epoch {epoch} is in {checkpoint}: continue with the same arguments and --resume"
        )
        self.epoch = epoch
        self.checkpoint = checkpoint


History = list[dict[str, float]]
"""The logged values of every epoch so far, oldest first."""


def checkpoint_state(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    epoch: int,
    history: History,
    config: TrainingConfig,
    tensors: dict[str, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """What a checkpoint holds; the augmented Lagrangian's multipliers where ``tensors`` has
    them, and the GPU's random state on a GPU."""
    state: dict[str, Any] = {}
    if tensors is not None and "multipliers" in tensors:
        state["multipliers"] = tensors["multipliers"].clone()
    state |= {
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "history": json.dumps(history),
        "training": json.dumps(asdict(config)),
        "torch_rng": torch.get_rng_state(),
    }
    device = next(model.parameters()).device
    if device.type == "cuda":  # dropout's stream on the GPU, for an exact resume there
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    return state


def write_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``state`` to ``path`` through a temporary file, so that ``path`` is always whole."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


RESUME_MUST_MATCH = (
    "mode", "epochs", "learning_rate", "seed", "rate_hz", "batch_size", "loss_weighting",
)  # fmt: skip
"""The training settings a resumed run must share with its checkpoint."""


def load_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    config: TrainingConfig,
    tensors: dict[str, torch.Tensor],
) -> tuple[int, History]:
    """Restore a checkpoint into ``model``, ``optimizer``, ``schedule``, torch's random state
    and ``tensors``' multipliers; returns (completed epochs, history). Refuses (``FitError``)
    a missing checkpoint or one trained with other ``RESUME_MUST_MATCH`` settings."""
    if not path.is_file():
        raise FitError(f"--resume: no checkpoint at {path}; start without --resume")
    # Tensors saved on any GPU load on the CPU first; load_state_dict then copies them to
    # wherever the model and optimiser live now.
    state = torch.load(path, map_location="cpu", weights_only=True)
    saved = json.loads(state["training"])
    changed = {k for k in RESUME_MUST_MATCH if saved.get(k, "fixed") != getattr(config, k)}
    if changed:
        raise FitError(
            f"--resume: the checkpoint was trained with different {', '.join(sorted(changed))}; "
            "resume with the same settings or start a new --out"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    torch.set_rng_state(state["torch_rng"])
    device = next(model.parameters()).device
    if device.type == "cuda" and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    if "multipliers" in tensors:
        tensors["multipliers"].copy_(state["multipliers"])
    return int(state["epoch"]), json.loads(state["history"])


class InterruptCheckpoint:
    """Ctrl-C during training writes the state after the last completed epoch as the
    checkpoint, so that ``--resume`` continues exactly where a run that was not
    interrupted would be.

    A context manager around ``fit`` (``with InterruptCheckpoint() as interrupt:
    fit(..., interrupt=interrupt)``): inside it (in the main thread) SIGINT runs a handler
    that writes the state ``fit`` last recorded (a copy in memory at every epoch's end:
    this network's state is small), where ``fit`` says this process owns the RUN, and
    raises ``TrainingInterrupted`` wherever in the epoch the signal arrived; before
    training starts it raises KeyboardInterrupt as usual. Leaving it restores the
    previous handler.
    """

    def __init__(self) -> None:
        self.previous: Any = None
        self.parts: _Bound | None = None
        self.state: dict[str, Any] = {}

    def __enter__(self) -> InterruptCheckpoint:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._interrupted)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None

    def bind(
        self,
        path: Path,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        schedule: torch.optim.lr_scheduler.LRScheduler,
        config: TrainingConfig,
        write: bool,
        tensors: dict[str, torch.Tensor] | None = None,
    ) -> None:
        """What to save and where: called by the training loop once training is set up;
        ``write`` where this process owns the RUN."""
        self.parts = _Bound(path, model, optimizer, schedule, config, write, tensors)

    def record(self, epoch: int, history: History) -> None:
        """Keep a copy of the state after ``epoch`` completed epochs (``bind`` first)."""
        if self.parts is None:
            raise RuntimeError("InterruptCheckpoint.record before bind")
        p = self.parts
        state = checkpoint_state(
            p.model, p.optimizer, p.schedule, epoch, history, p.config, p.tensors
        )
        self.state = copy.deepcopy(state)

    def _interrupted(self, signum: int, frame: FrameType | None) -> None:
        if self.parts is None or not self.state:
            raise KeyboardInterrupt
        if self.parts.write:
            write_checkpoint(self.parts.path, self.state)
        raise TrainingInterrupted(self.state["epoch"], self.parts.config.epochs, self.parts.path)


class _Bound(NamedTuple):
    """What ``InterruptCheckpoint.bind`` was given."""

    path: Path
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    config: TrainingConfig
    write: bool
    tensors: dict[str, torch.Tensor] | None
