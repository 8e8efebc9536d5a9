"""Prove train-fit on a CUDA machine: one command, a few minutes, a pass/fail table and one JSON.

    python scripts/check_gpu.py [--out DIR] [--epochs 3] [--data DIR] [--tensorrt-calls 200]

Every check trains or runs the paper's network (43 muscles, the default subject) on the
shared subject01 walking trial (both legs), from one seed, and is a row of the table and
an entry of DIR/check_gpu.json:

- ``fp32 GPU = CPU``: ``--epochs`` epochs on the CPU (one thread, as train-fit) and on the
  GPU; every epoch's training and validation loss equal within 1e-4 relative. The GRU's
  dropout is off in these runs: its random masks come from different generators on the
  CPU and the GPU, and the comparison is of the arithmetic, not of the draws.
- ``bf16 / fp16 GPU ~ CPU``: the same with autocast, within 5e-2 (bf16) and 1e-1 (fp16)
  relative: low precision changes the path training takes, not only its last digits (fp16
  starts with a loss scale of 1 and skips steps that overflow; the CPU figures behind the
  tolerances: docs/measurements.md).
- ``epoch speed``: seconds per epoch, median of the epochs after the first (the first pays
  cuDNN's set-up); the target is a GPU fp32 epoch at least 5x faster than the CPU's.
- ``no per-step copies``: one training epoch per precision under torch.profiler: CUDA
  memcpy events between host and device must number 0 (the windows, targets and batch
  order already live on the GPU; the losses are read once per epoch, after it).
- ``export``: the GPU-trained fp32 run exported by train-export's code (on the CPU, cuDNN
  off); the bundle's ONNX graph on the CPU answers every window of the trial as the run's
  network on the GPU does, within 1e-4.
- ``TensorRT``: scripts/check_tensorrt.py on that bundle, fp32 and fp16 with the default
  GRU handling (SKIPPED without torch-tensorrt).
- ``NCCL torchrun``: where two GPUs exist, train-fit under torchrun --nproc_per_node=2 for
  one epoch: NCCL, effective batch 16, one RUN.

``--rehearse`` runs every check with the CPU standing in for the GPU, to test this
script where there is no GPU; its figures prove nothing about a GPU.

Exit codes: 0 every check passed or was skipped; 1 a check failed; 2 no CUDA here or the
data is missing. Written on a machine without a GPU: it has not been run on one yet.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "opensim-gait2392"
FP32_TOLERANCE = 1e-4
LOW_PRECISION_TOLERANCE = {"bf16": 5e-2, "fp16": 1e-1}
EXPORT_TOLERANCE = 1e-4
SPEED_TARGET = 5.0
LOSS_KEYS = ("train_total", "validation_total")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("check_gpu"), help="work directory")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per training run")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="opensim-gait2392 folder")
    parser.add_argument("--tensorrt-calls", type=int, default=200, help="timed calls per engine")
    parser.add_argument(
        "--rehearse", action="store_true", help="the CPU stands in for the GPU (tests the script)"
    )
    args = parser.parse_args(argv)
    if not (torch.cuda.is_available() or args.rehearse):
        from train.device import cuda_seen

        print(f"check_gpu: nothing to check: {cuda_seen()} (--rehearse runs it on the CPU)")
        return 2
    device = torch.device("cpu") if args.rehearse else torch.device("cuda", 0)
    trial = {
        "ik": args.data / "subject01_walk1_ik.mot",
        "grf": args.data / "subject01_walk1_grf.mot",
        "loads": args.data / "subject01_walk1_grf.xml",
    }
    if not all(path.is_file() for path in trial.values()):
        print(f"check_gpu: the shared trial is not in {args.data}; pass --data", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report = Checks(args.out, device)
    setup = Setup(trial, args.epochs, args.out, device)
    histories = report.training(setup)
    report.copies(setup)
    bundle = report.export(setup)
    report.tensorrt(bundle, args.tensorrt_calls)
    report.torchrun(trial)
    report.data["seconds"] = time.perf_counter() - started
    report.data["histories"] = histories
    path = args.out / "check_gpu.json"
    path.write_text(json.dumps(report.data, indent=1) + "\n")
    print(report.table())
    print(f"check_gpu: {report.data['seconds']:.0f} s; report {path}; training logs {setup.log}")
    return 1 if report.failed else 0


class Setup:
    """The trial, subject and configurations every check shares."""

    def __init__(
        self, trial: dict[str, Path], epochs: int, out: Path, device: torch.device
    ) -> None:
        from calib.subject import load_subject
        from train.dataset import load_trials
        from train.fit_config import TrainingConfig, TrialFiles
        from train.model import ModelConfig

        self.trial = trial
        self.subject = load_subject(ROOT / "calib" / "data" / "default_subject.json")
        self.legs = load_trials([TrialFiles(**trial)], self.subject, 100.0)[0]
        self.model = ModelConfig(n_muscles=len(self.subject.muscles), gru_dropout=0.0)
        self.training = TrainingConfig(epochs=epochs, patience=0, checkpoint_every=epochs)
        self.out = out
        self.log = out / "fit.log"
        self.log.write_text("")
        self.device = device

    def fit(self, name: str, device: str, precision: str = "fp32") -> dict:
        from train.fit import fit

        config = replace(self.training, precision=precision)
        with self.log.open("a") as log, contextlib.redirect_stdout(log):
            print(f"=== {name}: {device}, {precision}")
            result = fit(
                self.subject, self.legs, self.out / name, self.model, config,
                progress=False, overwrite=True, device=device,
            )  # fmt: skip
        history = json.loads((result.directory / "history.json").read_text())
        return {"history": history, "metrics": result.metrics, "directory": result.directory}


class Checks:
    def __init__(self, out: Path, device: torch.device) -> None:
        gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "none (rehearsal)"
        self.data: dict = {"gpu": gpu, "torch": torch.__version__, "cuda": torch.version.cuda,
                           "checks": []}  # fmt: skip
        self.out = out

    @property
    def failed(self) -> bool:
        return any(check["result"] == "FAIL" for check in self.data["checks"])

    def add(self, name: str, passed: bool | None, figure: str, **details) -> None:
        result = "SKIP" if passed is None else ("pass" if passed else "FAIL")
        self.data["checks"].append({"check": name, "result": result, "figure": figure, **details})
        print(f"check_gpu: {name}: {result}: {figure}", flush=True)

    def table(self) -> str:
        width = max(len(c["check"]) for c in self.data["checks"])
        lines = [f"{'check':<{width}}  result  figure"]
        lines += [f"{c['check']:<{width}}  {c['result']:<6}  {c['figure']}"
                  for c in self.data["checks"]]  # fmt: skip
        return "\n".join(lines)

    def training(self, setup: Setup) -> dict:
        runs = {"cpu fp32": setup.fit("cpu_fp32", "cpu")}
        for precision in ("fp32", "bf16", "fp16"):
            runs[f"gpu {precision}"] = setup.fit(f"gpu_{precision}", setup.device, precision)
        reference = runs["cpu fp32"]["history"]
        for precision in ("fp32", "bf16", "fp16"):
            history = runs[f"gpu {precision}"]["history"]
            worst = max(
                abs(gpu[key] - cpu[key]) / abs(cpu[key])
                for gpu, cpu in zip(history, reference)
                for key in LOSS_KEYS
            )
            tolerance = LOW_PRECISION_TOLERANCE.get(precision, FP32_TOLERANCE)
            self.add(
                f"{precision} GPU vs CPU fp32 losses",
                worst <= tolerance,
                f"largest relative difference {worst:.2e} over {len(history)} epochs "
                f"(tolerance {tolerance:.0e})",
                relative_difference=worst,
                tolerance=tolerance,
            )
        seconds = {name: epoch_seconds(run["history"]) for name, run in runs.items()}
        speedup = seconds["cpu fp32"] / seconds["gpu fp32"]
        self.add(
            "GPU fp32 epoch >= 5x faster than CPU",
            speedup >= SPEED_TARGET,
            ", ".join(f"{name} {s:.3f} s" for name, s in seconds.items())
            + f" per epoch; fp32 speed-up {speedup:.1f}x",
            seconds_per_epoch=seconds,
            speedup=speedup,
        )
        self.gpu_run = runs["gpu fp32"]["directory"]
        return {name: run["history"] for name, run in runs.items()}

    def copies(self, setup: Setup) -> None:
        """Profile one epoch of ``train.fit.train_epoch`` per precision on the GPU."""
        from torch.profiler import ProfilerActivity, profile

        from train.dataset import as_tensors, split_by_time
        from train.device import grad_scaler
        from train.model import build_model
        from train.physics_targets import choose_balance
        from train.training_loop import make_optimizer, train_epoch
        from train.windows import WindowConfig, build_windows

        balanced, _ = choose_balance(setup.legs, "auto")
        window_config = WindowConfig(balanced=balanced,
                                     input_coordinates=setup.model.input_coordinates)  # fmt: skip
        windows = build_windows(setup.legs, setup.subject, window_config)
        train_index, _ = split_by_time(windows, setup.training.validation_fraction)
        train_set = windows.subset(train_index)
        tensors = as_tensors(train_set, setup.training.passive_force, setup.device)
        order = torch.randperm(len(train_set)).to(setup.device)
        activities = [ProfilerActivity.CPU]
        if setup.device.type == "cuda":
            activities.append(ProfilerActivity.CUDA)
        steps = -(-len(train_set) // setup.training.batch_size)
        counts = {}
        for precision in ("fp32", "bf16", "fp16"):
            config = replace(setup.training, precision=precision)
            model = build_model(setup.model, *train_set.input_statistics()).to(setup.device)
            optimizer = make_optimizer(model, config)
            scaler = grad_scaler(precision, setup.device)
            train_epoch(model, tensors, order, optimizer, scaler, config)  # warm-up
            synchronize(setup.device)
            with profile(activities=activities) as profiler:
                train_epoch(model, tensors, order, optimizer, scaler, config)
                synchronize(setup.device)
            events = profiler.key_averages()
            counts[precision] = {
                kind: sum(e.count for e in events if e.key.startswith(f"Memcpy {kind}"))
                for kind in ("HtoD", "DtoH")
            }
            kernels = sum(e.count for e in events if e.device_type.name == "CUDA")
            counts[precision]["cuda_events"] = kernels
        measured = all(c["cuda_events"] > 0 for c in counts.values())
        none = all(c["HtoD"] == 0 and c["DtoH"] == 0 for c in counts.values())
        self.add(
            "no host<->device copies in an epoch",
            none if measured else None,
            f"{steps} steps; "
            + ", ".join(f"{p}: {c['HtoD']} HtoD, {c['DtoH']} DtoH" for p, c in counts.items())
            + (
                ""
                if measured
                else " (rehearsal: no CUDA to profile)"
                if setup.device.type != "cuda"
                else " (the profiler saw no CUDA activity: CUPTI missing?)"
            ),
            copies=counts,
            steps=steps,
        )

    def export(self, setup: Setup) -> Path:
        from train.device import no_tf32
        from train.export import export_bundle
        from train.predict import predictor_from_bundle
        from train.run import load_run
        from train.windows import WindowConfig, build_windows

        bundle_dir = self.out / "bundle_from_gpu"
        with self.out.joinpath("export.log").open("w") as log, contextlib.redirect_stdout(log):
            export_bundle(self.gpu_run, bundle_dir)
        run = load_run(self.gpu_run)
        windows = build_windows(
            setup.legs, setup.subject,
            WindowConfig(input_coordinates=run.config.input_coordinates),
        )  # fmt: skip
        model = run.model.to(setup.device).eval()
        with torch.no_grad(), no_tf32(setup.device):
            on_gpu = model(torch.as_tensor(windows.inputs, device=setup.device)).double().cpu()
        on_cpu = predictor_from_bundle(bundle_dir).infer(windows.inputs)
        difference = float(np.max(np.abs(on_gpu.numpy() - on_cpu)))
        self.add(
            "GPU-trained bundle (ONNX, CPU) = network on GPU",
            difference <= EXPORT_TOLERANCE,
            f"max |activation difference| {difference:.1e} over {len(windows)} windows "
            f"(tolerance {EXPORT_TOLERANCE:.0e})",
            difference=difference,
        )
        return bundle_dir

    def tensorrt(self, bundle: Path, calls: int) -> None:
        from edge.tensorrt_cache import TensorRTSettings

        labels = [TensorRTSettings(precision=p).label for p in ("fp32", "fp16")]
        command = [sys.executable, str(ROOT / "scripts" / "check_tensorrt.py"),
                   "--bundle", str(bundle), "--calls", str(calls), "--warmup", "20",
                   "--variants", *labels]  # fmt: skip
        done = subprocess.run(
            command, check=False, capture_output=True, text=True, timeout=240, cwd=ROOT
        )
        output = (done.stdout + done.stderr).strip()
        (self.out / "check_tensorrt.log").write_text(output + "\n")
        skipped = "SKIPPED" in done.stdout
        last = output.splitlines()[-1] if output else "no output"
        self.add(
            "check_tensorrt.py on the bundle",
            None if skipped else done.returncode == 0,
            last,
            exit_code=done.returncode,
        )

    def torchrun(self, trial: dict[str, Path]) -> None:
        if torch.cuda.device_count() < 2:
            self.add("NCCL torchrun, 2 processes", None, "one GPU: nothing to run")
            return
        out = self.out / "torchrun"
        command = [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
            "--standalone", "-m", "train.cli.fit",
            "--ik", str(trial["ik"]), "--grf", str(trial["grf"]), "--loads", str(trial["loads"]),
            "--subject", str(ROOT / "calib" / "data" / "default_subject.json"),
            "--out", str(out), "--overwrite", "--epochs", "1", "--no-progress", "--device", "cuda",
        ]  # fmt: skip
        done = subprocess.run(
            command, check=False, capture_output=True, text=True, timeout=300, cwd=ROOT
        )
        (self.out / "torchrun.log").write_text(done.stdout + done.stderr)
        passed = (
            done.returncode == 0
            and "2 processes (nccl)" in done.stdout
            and "effective batch 2 processes x 8 = 16" in done.stdout
            and json.loads((out / "metrics.json").read_text())["processes"] == 2
        )
        self.add(
            "NCCL torchrun, 2 processes",
            passed,
            f"exit {done.returncode}; log {self.out / 'torchrun.log'}",
        )


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def epoch_seconds(history: list[dict]) -> float:
    """Median seconds of the epochs after the first (all of them where there is one)."""
    later = [record["seconds"] for record in history[1:]] or [history[0]["seconds"]]
    return statistics.median(later)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
