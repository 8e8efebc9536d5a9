"""Estimate activations and forces of a whole recording with a trained network (``train-predict``).

A trained network is either a training run (``train.run.load_run``: the eager
model, windows in batches of 256, on the CPU or a ``device`` such as "cuda") or a
bundle (``edge.bundle.load_bundle``: its ONNX graph through ONNX Runtime, the
runtime's fastest CPU backend, one window per call; ``backend="torch"`` runs its
exported program instead). One intra-op thread unless asked for more: two threads
spinning on a core another process keeps busy made the exported program two orders
of magnitude slower than one thread.

Inputs exactly as the runtime builds them: the joint angles on the model's
uniform grid, the causal velocity and acceleration of ``edge.derivatives``
(``network_inputs``), windows of ``window`` feature rows. A window ending at grid
sample j answers sample j - lookahead; there is one output row per grid sample
where a full window exists, time-stamped with the sample it answers.

Joint angles from an IK file, by default processed as training processes its
trials (``train.trial.TrialConfig``: a cubic spline to the file's own uniform
grid, a 6 Hz zero-phase 2nd-order Butterworth low-pass, a cubic spline to the
model's grid), so the network sees what it was trained on; with
``lowpass_hz=None`` the raw angles are linearly interpolated onto the model's
grid, as the runtime resamples a device's stream (``edge.derivatives.resample_uniform``).
With GRF and ExternalLoads files the trial is loaded exactly as training loads it
(``train.trial.load_trial``), over the span both files cover.

Forces (eq. 18) at each answered sample use the Hill model with a rigid tendon
(``train.hill``), the angles and the best non-causal velocity there
(``train.trial.noncausal_derivatives``), and activations clipped to [0, 1] (the
network's head is linear; the runtime clips the same way). ``active_force`` is
the active part alone, comparable with OpenSim's static optimisation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from calib.coordinates import COORDINATES
from calib.subject import Subject
from edge.backends import BackendError, create_backend
from edge.bundle import MANIFEST_FILE, BundleError, load_bundle
from edge.derivatives import (
    DERIVATIVE_TAPS,
    SAGITTAL_INPUTS,
    history_length,
    network_inputs,
    resample_uniform,
)
from firmware_bridge.command_line import PATH_ERRORS
from train.data_checks import (
    DataError,
    check_duration,
    check_trial_files,
    leg_coordinates,
    read_ik,
)
from train.device import DeviceError, resolve_device
from train.opensim_io import ExternalLoadsError, StorageError, write_storage
from train.physics_targets import force_factors
from train.run import RunError, load_run
from train.trial import (
    TrialConfig,
    TrialError,
    load_trial,
    noncausal_derivatives,
    resample_kinematics,
)

BUNDLE_BATCH = 4096
"""Windows handed to a bundle predictor's loop at once (each still runs at batch 1)."""


class PredictionError(ValueError):
    """A prediction that cannot be made; the message says what to change."""


@dataclass(frozen=True)
class Predictor:
    """A trained network and what it expects.

    ``infer`` maps float32 windows (B, window, 3 J) of raw SI features of the J
    ``input_coordinates`` to activations (B, M); ``batch_size`` is the largest B it
    takes (1 for an exported program).
    """

    subject: Subject
    window: int
    rate_hz: float
    lookahead: int
    infer: Callable[[np.ndarray], np.ndarray]
    batch_size: int
    source: str
    input_coordinates: tuple[str, ...] = SAGITTAL_INPUTS

    @property
    def muscles(self) -> tuple[str, ...]:
        return self.subject.muscle_names

    @property
    def history(self) -> int:
        """Grid samples one window needs."""
        return history_length(self.window, DERIVATIVE_TAPS)


def predictor_from_model(
    model: torch.nn.Module,
    subject: Subject,
    window: int,
    rate_hz: float,
    lookahead: int,
    source: str = "model",
    batch_size: int = 256,
    input_coordinates: tuple[str, ...] = SAGITTAL_INPUTS,
    device: torch.device | str = "cpu",
) -> Predictor:
    """A predictor from an eager network ``forward(x (B, W, 3 J)) -> (B, M)``, run on
    ``device`` (each batch of windows is copied there and its answers back)."""
    model = model.to(device).eval()

    def infer(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x).to(device)).double().cpu().numpy()

    return Predictor(
        subject, window, rate_hz, lookahead, infer, batch_size, source, input_coordinates
    )


def predictor_from_bundle(
    path: str | Path, backend: str = "onnxruntime", threads: int = 1
) -> Predictor:
    """A predictor running a bundle on the CPU through an ``edge.backends`` backend
    (``onnxruntime``: the bundle's ONNX graph; ``torch``: its exported program), one
    window per call, ``threads`` intra-op threads."""
    bundle = load_bundle(path)
    runner = create_backend(bundle, backend, threads=threads)
    manifest = bundle.manifest

    def infer(x: np.ndarray) -> np.ndarray:
        out = np.empty((x.shape[0], len(manifest.muscles)), dtype=np.float32)
        for k in range(x.shape[0]):
            runner.infer(x[k : k + 1], out[k])
        return out.astype(np.float64)

    return Predictor(
        bundle.subject,
        manifest.window,
        manifest.sample_rate_hz,
        manifest.lookahead,
        infer,
        BUNDLE_BATCH,
        f"bundle {bundle.directory} ({runner.name})",
        manifest.input_coordinates,
    )


def predictor_from_run(path: str | Path, threads: int = 1, device: str = "cpu") -> Predictor:
    """A predictor from a training run directory (``train.run.load_run``) on ``device``
    (``train.device.resolve_device``); sets torch's intra-op threads to ``threads``."""
    torch.set_num_threads(threads)
    where = resolve_device(device)
    run = load_run(path)
    return predictor_from_model(
        run.model,
        run.subject,
        run.window,
        run.sample_rate_hz,
        run.lookahead,
        source=f"run {run.directory}" + ("" if where.type == "cpu" else f" on {where}"),
        input_coordinates=run.config.input_coordinates,
        device=where,
    )


def load_predictor(
    path: str | Path, backend: str = "onnxruntime", threads: int = 1, device: str = "cpu"
) -> Predictor:
    """A bundle (a directory with manifest.json, run by ``backend`` on the CPU) or a
    training run (on ``device``)."""
    path = Path(path)
    if not path.is_dir():
        raise PredictionError(f"{path} is neither a training run nor a bundle directory")
    if (path / MANIFEST_FILE).is_file():
        if resolve_device(device).type != "cpu":
            raise PredictionError(
                f"--device {device}: {path} is a bundle, which runs on the CPU here (--backend "
                f"{backend}); pass its training run to use the GPU, or edge-run for TensorRT"
            )
        return predictor_from_bundle(path, backend, threads)
    return predictor_from_run(path, threads, device)


@dataclass(frozen=True)
class Prediction:
    """Per answered sample: ``time`` (N,) s, ``q`` (N, 5) rad, ``activation`` (N, M)
    as the network gives it, ``force`` (N, M) N (eq. 18), ``active_force`` (N, M) N;
    ``inference_s`` the network's wall time for all N windows."""

    time: np.ndarray
    q: np.ndarray
    activation: np.ndarray
    force: np.ndarray
    active_force: np.ndarray
    inference_s: float


def ik_on_grid(
    ik_path: str | Path,
    rate_hz: float,
    side: str = "r",
    lowpass_hz: float | None = TrialConfig().kinematics_cutoff_hz,
    angles_in_degrees: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(time (N,) s, q (N, 5) rad, missing) of a leg's IK angles on a uniform grid at
    ``rate_hz``, in ``calib.COORDINATES`` order; coordinates the file lacks (hip adduction,
    rotation) are 0 and named in ``missing``.

    The file's unit is checked against its values (``train.data_checks.read_ik``) unless
    ``angles_in_degrees`` says which it is.
    """
    columns = leg_coordinates(COORDINATES, (side,))
    storage = read_ik(ik_path, columns, angles_in_degrees)
    held = [c for c in columns if storage.has_column(c)]
    q_held = storage.angles_radians(held)
    n = int(np.floor((storage.time[-1] - storage.time[0]) * rate_hz + 1e-6)) + 1
    grid = storage.time[0] + np.arange(n) / rate_hz
    if lowpass_hz is None:
        on_grid = resample_uniform(storage.time, q_held, grid[-1], rate_hz, n)
    else:
        config = TrialConfig(kinematics_cutoff_hz=lowpass_hz)
        on_grid = resample_kinematics(storage, q_held, grid, config)
    q = np.zeros((n, len(COORDINATES)))
    q[:, [columns.index(c) for c in held]] = on_grid
    missing = tuple(c for c in COORDINATES if f"{c}_{side}" not in held)
    return grid, q, missing


def predict(predictor: Predictor, time_s: np.ndarray, q: np.ndarray) -> Prediction:
    """Activations and forces for every grid sample with a full window before it.

    ``time_s`` (N,) s and ``q`` (N, 5) rad (``calib.COORDINATES`` order) on a uniform
    grid at the predictor's rate; the network reads its input coordinates, the
    forces use the whole pose.
    """
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 2 or q.shape[1] != len(COORDINATES) or q.shape[0] != len(time_s):
        raise PredictionError(
            f"expected angles (N, {len(COORDINATES)}) matching {len(time_s)} times, got "
            f"shape {q.shape}"
        )
    if q.shape[0] < predictor.history:
        raise PredictionError(
            f"{q.shape[0]} samples at {predictor.rate_hz:g} Hz are fewer than one window needs "
            f"({predictor.history}: {predictor.window} rows + {DERIVATIVE_TAPS - 1} for the "
            "causal derivatives)"
        )
    inputs = [COORDINATES.index(c) for c in predictor.input_coordinates]
    # row r of the features belongs to sample r + taps - 1
    features = network_inputs(q[:, inputs], predictor.rate_hz).astype(np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(features, predictor.window, axis=0)
    windows = np.ascontiguousarray(
        windows.transpose(0, 2, 1)
    )  # (K, W, 3 J), window k ends at row k+W-1
    started = time.perf_counter()
    activation = np.concatenate(
        [
            predictor.infer(windows[k : k + predictor.batch_size])
            for k in range(0, windows.shape[0], predictor.batch_size)
        ]
    )
    inference_s = time.perf_counter() - started
    if activation.shape != (windows.shape[0], len(predictor.muscles)):
        raise PredictionError(
            f"the network answered shape {activation.shape}, expected "
            f"({windows.shape[0]}, {len(predictor.muscles)}) for the subject's muscles"
        )
    answered = np.arange(windows.shape[0]) + predictor.history - 1 - predictor.lookahead
    qd, _ = noncausal_derivatives(q, predictor.rate_hz)
    active_max, passive = force_factors(predictor.subject, q[answered], qd[answered])
    active_force = active_max * np.clip(activation, 0.0, 1.0)
    return Prediction(
        time=np.asarray(time_s, dtype=np.float64)[answered],
        q=q[answered],
        activation=activation,
        force=active_force + passive,
        active_force=active_force,
        inference_s=inference_s,
    )


def write_prediction(
    prefix: str | Path, prediction: Prediction, muscles: tuple[str, ...]
) -> list[Path]:
    """PREFIX_activation.sto, PREFIX_force.sto (eq. 18), PREFIX_active_force.sto."""
    outputs = [
        ("activation", prediction.activation, "muscle activation as the network estimates it"),
        ("force", prediction.force, "muscle-tendon force (N), eq. (18)"),
        ("active_force", prediction.active_force, "active muscle force (N)"),
    ]
    return [
        write_storage(
            f"{prefix}_{suffix}.sto",
            prediction.time,
            muscles,
            data,
            name=f"Prediction_{suffix}",
            description=f"train-predict: {what}.",
        )
        for suffix, data, what in outputs
    ]


def predict_files(
    predictor: Predictor,
    ik_path: str | Path,
    grf_path: str | Path | None = None,
    loads_path: str | Path | None = None,
    side: str = "r",
    lowpass_hz: float | None = TrialConfig().kinematics_cutoff_hz,
    angles_in_degrees: bool | None = None,
    notes: list[str] | None = None,
) -> Prediction:
    """Predict from an IK file, or from IK + GRF + loads loaded as a training trial.

    A recording shorter than one window is refused with its length; ``notes``, if
    given, receives the IK-GRF overlap line (``train.data_checks.Overlap.describe``).
    """
    if (grf_path is None) != (loads_path is None):
        raise PredictionError("give both --grf and --loads, or neither")
    needs = f"one window ({predictor.window} rows + {DERIVATIVE_TAPS - 1} of derivative history)"
    if loads_path is not None:
        overlap = check_trial_files(
            ik_path, grf_path, loads_path, COORDINATES, (side,), angles_in_degrees
        )
        check_duration(
            f"the IK-GRF overlap of {ik_path}", overlap.duration_s, predictor.rate_hz,
            predictor.history, needs,
        )  # fmt: skip
        trial = load_trial(
            ik_path,
            grf_path,
            loads_path,
            predictor.subject,
            predictor.rate_hz,
            side,
            config=TrialConfig(kinematics_cutoff_hz=lowpass_hz),
            angles_in_degrees=angles_in_degrees,
        )
        if notes is not None:
            notes.append(overlap.describe(f"{trial.n_samples} samples at {trial.rate_hz:g} Hz"))
        return predict(predictor, trial.time, trial.q)
    time_s, q, missing = ik_on_grid(ik_path, predictor.rate_hz, side, lowpass_hz, angles_in_degrees)
    needed = [c for c in missing if c in predictor.input_coordinates]
    if needed:
        raise PredictionError(
            f"{ik_path} has no {', '.join(f'{c}_{side}' for c in needed)}, which the network "
            f"reads ({', '.join(predictor.input_coordinates)})"
        )
    check_duration(
        f"IK {ik_path}", time_s[-1] - time_s[0], predictor.rate_hz, predictor.history, needs
    )
    return predict(predictor, time_s, q)


PREDICTION_ERRORS: tuple[type[Exception], ...] = (
    PredictionError,
    DeviceError,
    DataError,
    BackendError,
    RunError,
    BundleError,
    StorageError,
    ExternalLoadsError,
    TrialError,
    *PATH_ERRORS,
)


if __name__ == "__main__":  # python -m train.predict: the same command as train.cli.predict
    from train.cli.predict import main

    raise SystemExit(main())
