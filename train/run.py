"""A training RUN directory: everything needed to predict later, and how to load it.

Layout (all written by ``train-fit``):

- ``config.json``: ``model`` (``train.model.ModelConfig``), ``training``
  (``train.fit_config.TrainingConfig``), ``sample_rate_hz``, ``muscles``,
  ``input_features``, ``package_version``;
- ``subject.json``: the subject the physics used (``calib.Subject``);
- ``weights.pt``: the network's ``state_dict`` (normalisation buffers
  included), loadable with ``torch.load(path, weights_only=True)``;
- ``normalization.json``: ``input_mean``/``input_std`` per input feature (SI);
- ``metrics.json``: final losses by component, torque balance per coordinate
  (RMSE, % of peak, share balanced), R^2/r/NRMSE per muscle where labels were
  given, training time, epochs and what stopped training;
- ``history.json``: the logged losses of every epoch;
- ``losses.png``: the loss components per epoch;
- ``checkpoint.pt``: model + optimiser + schedule + epoch, for ``--resume``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from calib.subject import Subject, SubjectError, load_subject
from train.fit_config import FitError
from train.model import ModelConfig, MuscleActivationNet, build_model

CONFIG_FILE = "config.json"
SUBJECT_FILE = "subject.json"
WEIGHTS_FILE = "weights.pt"
NORMALIZATION_FILE = "normalization.json"
METRICS_FILE = "metrics.json"
LOSSES_PLOT_FILE = "losses.png"
CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.json"
RUN_FILES = (
    CONFIG_FILE, SUBJECT_FILE, WEIGHTS_FILE, NORMALIZATION_FILE, METRICS_FILE,
    LOSSES_PLOT_FILE, CHECKPOINT_FILE, HISTORY_FILE,
)  # fmt: skip
"""What a RUN directory holds, all of which train-fit's --overwrite replaces."""


class RunError(ValueError):
    """A RUN directory that cannot be loaded; the message names the file and the fix."""


@dataclass(frozen=True, eq=False)
class TrainedRun:
    """A loaded RUN: the network in eval mode and what it was trained with."""

    model: MuscleActivationNet
    config: ModelConfig
    subject: Subject
    sample_rate_hz: float
    training: dict[str, Any]
    metrics: dict[str, Any]
    input_mean: np.ndarray
    input_std: np.ndarray
    directory: Path

    @property
    def muscle_names(self) -> tuple[str, ...]:
        return self.subject.muscle_names

    @property
    def lookahead(self) -> int:
        return self.config.lookahead

    @property
    def window(self) -> int:
        return self.config.window


def package_version() -> str:
    try:
        return metadata.version("mjca-edge")
    except metadata.PackageNotFoundError:
        return "unknown"


def save_run(
    directory: str | Path,
    model: MuscleActivationNet,
    subject: Subject,
    sample_rate_hz: float,
    training: dict[str, Any],
    metrics: dict[str, Any],
) -> Path:
    """Write config, subject, weights and normalisation of a trained ``model`` (see module doc)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if model.config.n_muscles != len(subject.muscles):
        raise RunError(
            f"the network predicts {model.config.n_muscles} muscles but the subject has "
            f"{len(subject.muscles)}"
        )
    config = {
        "model": model.config.to_dict(),
        "training": training,
        "sample_rate_hz": float(sample_rate_hz),
        "muscles": list(subject.muscle_names),
        "input_features": list(model.config.input_features),
        "package_version": package_version(),
    }
    _write_json(directory / CONFIG_FILE, config)
    subject.save(directory / SUBJECT_FILE)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save(state, directory / WEIGHTS_FILE)
    _write_json(
        directory / NORMALIZATION_FILE,
        {
            "input_features": list(model.config.input_features),
            "input_mean": state["normalize.mean"].tolist(),
            "input_std": state["normalize.std"].tolist(),
        },
    )
    write_metrics(directory, metrics)
    return directory


def write_metrics(directory: str | Path, metrics: dict[str, Any]) -> None:
    _write_json(Path(directory) / METRICS_FILE, metrics)


def load_run(path: str | Path) -> TrainedRun:
    """Load a RUN directory written by ``train-fit``; raises ``RunError`` naming what is wrong."""
    directory = Path(path)
    if not directory.is_dir():
        raise RunError(f"{directory} is not a directory: pass the --out directory of train-fit")
    config = _read_json(directory / CONFIG_FILE)
    normalization = _read_json(directory / NORMALIZATION_FILE)
    try:
        model_config = ModelConfig.from_dict(dict(config["model"]))
        sample_rate_hz = float(config["sample_rate_hz"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RunError(f"{directory / CONFIG_FILE} is not a train-fit config: {exc}") from exc
    expected = list(model_config.input_features)
    if list(normalization.get("input_features", [])) != expected:
        raise RunError(
            f"{directory / NORMALIZATION_FILE} lists input features "
            f"{normalization.get('input_features')}, the run's network reads {expected}"
        )
    try:
        subject = load_subject(directory / SUBJECT_FILE)
    except SubjectError as exc:
        raise RunError(str(exc)) from exc
    mean = np.asarray(normalization["input_mean"], dtype=np.float64)
    std = np.asarray(normalization["input_std"], dtype=np.float64)
    model = build_model(model_config, mean, std)
    weights_path = directory / WEIGHTS_FILE
    if not weights_path.is_file():
        raise RunError(f"{weights_path} is missing: the run did not finish; use --resume")
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (RuntimeError, OSError) as exc:
        raise RunError(f"{weights_path} does not fit the configured network: {exc}") from exc
    model.eval()
    metrics_path = directory / METRICS_FILE
    metrics = _read_json(metrics_path) if metrics_path.is_file() else {}
    return TrainedRun(
        model=model,
        config=model_config,
        subject=subject,
        sample_rate_hz=sample_rate_hz,
        training=dict(config.get("training", {})),
        metrics=metrics,
        input_mean=mean,
        input_std=std,
        directory=directory,
    )


def check_run_directory(out: str | Path, resume: bool, overwrite: bool) -> None:
    """Refuse to train into a directory that holds a run unless told what to do with it."""
    out = Path(out)
    if resume and overwrite:
        raise FitError("give --resume (continue the run in --out) or --overwrite, not both")
    existing = [name for name in RUN_FILES if (out / name).exists()]
    if existing and not (resume or overwrite):
        raise FitError(
            f"{out} already holds a training run ({', '.join(existing)}): pass --resume to "
            "continue it, --overwrite to replace it, or choose another --out"
        )
    if out.exists() and not out.is_dir():
        raise FitError(f"--out {out} is a file, not a directory")


def clear_run_directory(out: Path) -> None:
    """Delete the files of a previous run in ``out`` (``RUN_FILES``), nothing else."""
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(
            f"{path} is missing: is {path.parent} a train-fit --out directory?"
        ) from None
    except json.JSONDecodeError as exc:
        raise RunError(f"{path} is not valid JSON: {exc}") from exc
