"""Per-call latency of every CPU inference path for one bundle, batch 1, one thread.

    python scripts/bench_backends.py [--bundle DIR] [--calls 5000] [--threads 1]

Without --bundle it uses the package's default bundle, or, where none is built
yet, exports an untrained network of the paper's size (architecture
--architecture) into a temporary directory: latency does not depend on the
weights. Paths measured: eager PyTorch (the network rebuilt from the bundle's
own weights), the ExportedProgram in PyTorch ("torch" backend), ONNX Runtime
("onnxruntime" backend: the bundle's model.onnx, whose last GRU layer computes
only the step the head reads) and, for comparison, ONNX Runtime on the whole
network exported here from model.pt2 ("onnx-whole", same session settings).
Each gets a warm-up, then --calls timed calls on real
gait-like windows; the table gives median, p99 and p99.9 in microseconds, and
the last line names the fastest, which edge.backends.selection.CPU_PREFERENCE
must list first. A benchmark, not a test: figures move with machine load.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from edge.backends import CPU_PREFERENCE, BackendError, create_backend
from edge.bundle import BundleError, default_bundle_path, load_bundle
from edge.derivatives import history_length, network_inputs
from train.export import export_bundle
from train.model import ARCHITECTURES, ModelConfig, build_model


def gait_windows(n: int, window: int, rate_hz: float) -> np.ndarray:
    """Windows of a smooth synthetic gait (rad) built as the runtime builds them."""
    t = np.arange(n + history_length(window)) / rate_hz
    phase = 2 * np.pi * t / 1.1
    q = np.stack(
        [0.3 * np.sin(phase) + 0.1, -0.6 + 0.5 * np.sin(phase + 1.0), 0.2 * np.sin(phase - 0.5)],
        axis=1,
    )
    features = network_inputs(q, rate_hz)
    return np.stack([features[i : i + window] for i in range(n)]).astype(np.float32)


def time_calls(
    call: Callable[[np.ndarray], object], windows: np.ndarray, warmup: int
) -> np.ndarray:
    for i in range(warmup):
        call(windows[i % len(windows)][None])
    durations = np.empty(len(windows))
    for i, window in enumerate(windows):
        x = window[None]
        start = time.perf_counter_ns()
        call(x)
        durations[i] = time.perf_counter_ns() - start
    return durations / 1e3


def eager_from_bundle(bundle) -> torch.nn.Module:
    """The network rebuilt from the bundle's architecture and the program's own weights."""
    manifest = bundle.manifest
    model = build_model(
        ModelConfig.from_dict(dict(manifest.architecture)),
        np.asarray(manifest.input_mean),
        np.asarray(manifest.input_std),
    )
    model.load_state_dict(bundle.load_program().state_dict)
    return model.eval()


def whole_network_onnx(bundle, scratch: Path, threads: int) -> Callable[[np.ndarray], object]:
    """ONNX Runtime on the bundle's whole program (no last-step rewrite), same settings."""
    import onnxruntime as ort

    from edge.bundle import ONNX_INPUT_NAME
    from train.export import export_onnx

    path = scratch / "whole.onnx"
    export_onnx(bundle.load_program(), torch.zeros(bundle.input_shape), path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {ONNX_INPUT_NAME: x})[0][0]


def _bundle(args: argparse.Namespace, scratch: Path):
    if args.bundle is not None:
        return load_bundle(args.bundle)
    if (default_bundle_path() / "manifest.json").is_file():
        return load_bundle(default_bundle_path())
    print(f"no default bundle yet: exporting an untrained {args.architecture} network")
    model = build_model(ModelConfig(architecture=args.architecture)).eval()
    return export_bundle(model, scratch / "bundle")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, help="bundle directory (default: the package's)")
    parser.add_argument("--architecture", choices=ARCHITECTURES, default="mjca_bigru")
    parser.add_argument("--calls", type=int, default=5000, help="timed calls per path")
    parser.add_argument("--warmup", type=int, default=300, help="untimed calls first")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads")
    args = parser.parse_args(argv)
    if args.calls < 100:
        print("bench_backends: --calls must be at least 100 for a p99", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        try:
            bundle = _bundle(args, Path(scratch))
        except (BundleError, OSError) as exc:
            print(f"bench_backends: {exc}", file=sys.stderr)
            return 1
        manifest = bundle.manifest
        windows = gait_windows(args.calls, manifest.window, manifest.sample_rate_hz)
        eager = eager_from_bundle(bundle)

        def call_eager(x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return eager(torch.from_numpy(x)).numpy()[0]

        paths: dict[str, Callable[[np.ndarray], object]] = {"eager": call_eager}
        for name in CPU_PREFERENCE:
            try:
                paths[name] = create_backend(bundle, name, threads=args.threads).infer
            except BackendError as exc:
                print(f"{name}: not measured ({exc})")
        paths["onnx-whole"] = whole_network_onnx(bundle, Path(scratch), args.threads)
        reference = np.stack([call_eager(w[None]) for w in windows[:50]])
        print(
            f"bundle {bundle.directory} ({manifest.architecture.get('architecture')}, window "
            f"{manifest.window}, {manifest.n_muscles} muscles); batch 1, {args.threads} thread(s), "
            f"{args.calls} calls after {args.warmup} warm-up"
        )
        rows = {}
        for name, call in tqdm(paths.items(), desc="paths", leave=False):
            got = np.stack([np.asarray(call(w[None])) for w in windows[:50]])
            error = float(np.max(np.abs(got - reference)))
            rows[name] = (time_calls(call, windows, args.warmup), error)
    print(f"{'path':<12}{'median us':>11}{'p99 us':>10}{'p99.9 us':>10}{'max |diff|':>12}")
    for name, (us, error) in rows.items():
        p50, p99, p999 = np.percentile(us, [50, 99, 99.9])
        print(f"{name:<12}{p50:>11.0f}{p99:>10.0f}{p999:>10.0f}{error:>12.1e}")
    backends = {name: np.median(us) for name, (us, _) in rows.items() if name in CPU_PREFERENCE}
    fastest = min(backends, key=backends.get)
    agrees = "agrees with" if fastest == CPU_PREFERENCE[0] else "DISAGREES with"
    print(f"fastest backend here: {fastest}; {agrees} CPU_PREFERENCE {CPU_PREFERENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
