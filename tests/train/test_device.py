"""Where training computes: the device chosen and refused, everything of an epoch on it,
bf16/fp16 autocast with the physics loss in fp32, checkpoints from a GPU, the backends."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers.training import TINY, real_trial_args
from torch.utils._python_dispatch import TorchDispatchMode

from train import training_loop
from train.checkpoints import InterruptCheckpoint
from train.cli.evaluate import main as eval_main
from train.cli.fit import main as fit_main
from train.cli.predict import main as predict_main
from train.dataset import as_tensors
from train.device import (
    DeviceError,
    autocast,
    check_precision,
    grad_scaler,
    process_group_backend,
    resolve_device,
)
from train.fit import fit
from train.fit_config import FitError, TrainingConfig
from train.hill import generalized_forces
from train.losses import physics_informed_loss
from train.model import ModelConfig, build_model, clamped_activation
from train.predict import PredictionError, load_predictor
from train.run import load_run
from train.training_loop import batch_losses, make_optimizer, train_epoch
from train.windows import WindowConfig, build_windows

META = torch.device("meta")
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@no_cuda
@pytest.mark.parametrize("requested", ["cuda", "cuda:0", "CUDA:1"])
def test_cuda_without_a_gpu_is_refused_naming_what_torch_sees(requested):
    with pytest.raises(DeviceError) as error:
        resolve_device(requested)
    message = str(error.value)
    assert message.startswith(f"--device {requested}: torch {torch.__version__}")
    assert "CUDA device" in message and "--device cpu" in message


def test_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == (
        torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    )
    for bad in ("gpu", "cuda:x", "mps", ""):
        with pytest.raises(DeviceError, match="give auto, cpu, cuda or cuda:N"):
            resolve_device(bad)
    with pytest.raises(DeviceError, match="under torchrun each process takes cuda:LOCAL_RANK"):
        resolve_device("cuda:1", local_rank=0, world_size=2)
    assert resolve_device(META) == META  # a test device is kept as it is


def test_the_process_group_backend_follows_the_device():
    assert process_group_backend(torch.device("cuda", 1)) == "nccl"
    assert process_group_backend(torch.device("cpu")) == "gloo"


def test_precisions_are_checked():
    with pytest.raises(DeviceError, match="give fp32, bf16, fp16"):
        check_precision("fp64", torch.device("cpu"))
    with pytest.raises(FitError, match="precision must be one of fp32, bf16, fp16"):
        TrainingConfig(precision="half")
    assert not grad_scaler("fp32", torch.device("cpu")).is_enabled()
    assert grad_scaler("fp16", torch.device("cpu")).is_enabled()
    with autocast("fp32", torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")
    with autocast("bf16", torch.device("cpu")):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16


@no_cuda
def test_train_fit_refuses_cuda_in_one_line_before_reading_anything(tmp_path, capsys):
    code = fit_main([*real_trial_args(tmp_path / "run"), "--device", "cuda"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("train-fit: error: --device cuda: torch ")
    assert not (tmp_path / "run").exists()


@no_cuda
def test_train_predict_refuses_cuda_in_one_line(tmp_path, capsys):
    args = [str(tmp_path), "--ik", str(tmp_path / "walk.mot"), "-o", str(tmp_path / "p")]
    code = predict_main([*args, "--device", "cuda:0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "sees no CUDA device" in err[0]


@no_cuda
def test_train_eval_refuses_cuda_in_one_line(tmp_path, capsys):
    args = [str(tmp_path), "--ik", str(tmp_path / "walk.mot"), "--labels", str(tmp_path / "so")]
    code = eval_main([*args, "--device", "cuda"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("train-eval: error: --device cuda")


def test_a_bundle_runs_on_the_cpu_only(tmp_path):
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(PredictionError, match="is a bundle, which runs on the CPU here"):
        load_predictor(tmp_path, device=META)


class DeviceGuard(TorchDispatchMode):
    """Records every operator that receives a tensor of more than one element off
    ``device``: a tensor someone forgot to move."""

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self.device = device
        self.strays: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        for value in torch.utils._pytree.tree_leaves((args, kwargs)):
            stray = isinstance(value, torch.Tensor) and value.device != self.device
            if stray and value.numel() > 1:
                self.strays.append(f"{func}: {value.device} {tuple(value.shape)}")
        return func(*args, **kwargs)


def _windows(subject, walking_trial, labels=False):
    windows = build_windows([walking_trial(n=120)], subject, WindowConfig())
    if labels:
        rng = np.random.default_rng(0)
        windows = windows.with_labels(rng.uniform(0.01, 0.3, (len(windows), len(subject.muscles))))
    return windows


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["pi", "supervised"])
def test_an_epoch_runs_whole_on_the_meta_device(subject, walking_trial, mode):
    """The meta device has no data: an .item(), .numpy() or float() would raise, and so
    would any tensor of the step left on the CPU; the guard also lists any such tensor."""
    windows = _windows(subject, walking_trial, labels=True)
    config = TrainingConfig(mode=mode)
    mean, std = windows.input_statistics()
    model = build_model(ModelConfig(n_muscles=len(subject.muscles), **TINY), mean, std).to(META)
    tensors = as_tensors(windows, device=META)
    order = torch.randperm(len(windows)).to(META)
    optimizer = make_optimizer(model, config)
    guard = DeviceGuard(META)
    with guard:
        sums = train_epoch(model, tensors, order, optimizer, grad_scaler("fp32", META), config)
    assert guard.strays == []
    assert set(sums) >= {"total", "dynamics", "effort", "bounds"}
    assert all(value.device == META and value.ndim == 0 for value in sums.values())
    assert all(p.grad is not None and p.grad.device == META for p in model.parameters())


@pytest.mark.slow
def test_fit_hands_the_epoch_everything_on_its_device(
    subject, walking_trial, tmp_path, monkeypatch
):
    """fit(device=meta): the model, the windows, the targets and the batch order reach the
    epoch on the meta device (a forgotten .to(device) in fit fails here)."""
    seen = {}

    class Stop(Exception):
        pass

    def recording_epoch(model, tensors, order, *args, **kwargs):
        seen["devices"] = {p.device for p in model.parameters()} | {
            t.device for t in [*tensors.values(), order]
        }
        seen["names"] = set(tensors)
        seen["sums"] = train_epoch(model, tensors, order, *args, **kwargs)
        raise Stop

    monkeypatch.setattr(training_loop, "train_epoch", recording_epoch)
    trials = [walking_trial(n=120), walking_trial(n=120, side="l", phase=np.pi)]
    with pytest.raises(Stop):
        fit(
            subject, trials, tmp_path / "run", ModelConfig(n_muscles=len(subject.muscles), **TINY),
            TrainingConfig(epochs=1), progress=False, device=META,
        )  # fmt: skip
    assert seen["devices"] == {META}
    assert seen["names"] >= {"inputs", "required_torque", "moment_arms", "force_gain"}
    assert all(value.device == META for value in seen["sums"].values())


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_autocast_runs_the_network_low_and_the_physics_loss_in_fp32(
    subject, walking_trial, precision
):
    windows = _windows(subject, walking_trial)
    mean, std = windows.input_statistics()
    model = build_model(ModelConfig(n_muscles=len(subject.muscles), **TINY), mean, std).train()
    batch = as_tensors(windows.subset(np.arange(16)))
    outputs = []
    model.register_forward_hook(lambda module, args, output: outputs.append(output))
    config = TrainingConfig(precision=precision)
    parts = batch_losses(model, batch, config)
    low = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    assert outputs[-1].dtype == low  # the network did run under autocast
    assert all(value.dtype == torch.float32 for value in parts.values())
    raw = outputs[-1].float()
    expected = physics_informed_loss(
        clamped_activation(raw), batch["force_gain"], batch["force_passive"],
        batch["moment_arms"], batch["required_torque"], config.loss_weights, bounded=raw,
    )  # fmt: skip
    for name in expected:
        assert torch.equal(parts[name], expected[name]), name
    # what the guard prevents: the same physics under autocast leaves fp32
    with autocast(precision, torch.device("cpu")):
        careless = generalized_forces(batch["force_gain"], batch["moment_arms"])
    assert careless.dtype == low


def _tiny_fit(subject, walking_trial, out, epochs=3, resume=False, **training):
    trials = [walking_trial(n=120), walking_trial(n=120, side="l", phase=np.pi)]
    with InterruptCheckpoint() as interrupt:
        return fit(
            subject, trials, out, ModelConfig(n_muscles=len(subject.muscles), **TINY),
            TrainingConfig(epochs=epochs, learning_rate=3e-3, **training), progress=False,
            interrupt=interrupt, device="cpu", resume=resume,
        )  # fmt: skip


@pytest.mark.slow
def test_bf16_and_fp16_train_on_the_cpu_like_fp32(subject, walking_trial, tmp_path):
    """Three epochs from one seed: every precision lowers the loss; bf16/fp16 end within
    10 % of fp32's training loss (the network's rounding, not the physics')."""
    totals = {}
    for precision in ("fp32", "bf16", "fp16"):
        result = _tiny_fit(subject, walking_trial, tmp_path / precision, precision=precision)
        history = json.loads((tmp_path / precision / "history.json").read_text())
        totals[precision] = [r["train_total"] for r in history]
        assert totals[precision][-1] < totals[precision][0]
        assert result.metrics["precision"] == precision
        assert load_run(tmp_path / precision).training["precision"] == precision
        state = torch.load(tmp_path / precision / "weights.pt", weights_only=True)
        assert all(v.dtype in (torch.float32, torch.int64) for v in state.values())
    for precision in ("bf16", "fp16"):
        assert totals[precision][-1] == pytest.approx(totals["fp32"][-1], rel=0.1)


@pytest.fixture
def saved_as_if_on_a_gpu(monkeypatch):
    """torch.save tags every CPU storage "cuda:0", as a GPU run's files are tagged."""

    def tag(storage):
        return "cuda:0" if storage.device.type == "cpu" else None

    monkeypatch.setattr(
        torch.serialization, "_package_registry", list(torch.serialization._package_registry)
    )
    torch.serialization.register_package(1, tag, lambda storage, location: None)


@pytest.mark.slow
@no_cuda
def test_a_run_written_on_a_gpu_resumes_and_loads_on_the_cpu(
    subject, walking_trial, tmp_path, saved_as_if_on_a_gpu
):
    _tiny_fit(subject, walking_trial, tmp_path / "run", epochs=2, checkpoint_every=1)
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    before = torch.load(tmp_path / "run" / "weights.pt", map_location="cpu", weights_only=True)
    _tiny_fit(subject, walking_trial, tmp_path / "run", epochs=2, checkpoint_every=1, resume=True)
    after = load_run(tmp_path / "run").model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.slow
@pytest.mark.needs_data
def test_two_processes_train_with_gloo_under_torchrun(tmp_path):
    """torchrun --nproc_per_node=2 on the CPU: gloo, an effective batch of 16, one RUN."""
    import subprocess
    import sys

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"model": TINY}))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        "--standalone", "-m", "train.cli.fit",
        *real_trial_args(tmp_path / "run", epochs=1), "--config", str(config),
        "--legs", "right", "--device", "cpu",
    ]  # fmt: skip
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 processes (gloo)" in done.stdout
    assert "effective batch 2 processes x 8 = 16 windows per step" in done.stdout
    assert done.stdout.startswith("train-fit: device cpu (torch ")  # the first line
    assert done.stdout.count("train-fit: device cpu") == 1  # rank 0 alone speaks
    assert done.stdout.count("windows right") == 1
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["device"].startswith("cpu")
