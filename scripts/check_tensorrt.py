"""Compile every TensorRT variant of a bundle, check parity with eager PyTorch, time it.

    python scripts/check_tensorrt.py [--bundle DIR] [--variants LABEL ...] [--calls 2000]

For each variant (precision fp32/fp16 x GRU handling unrolled/torch/cell_loop x
CUDA graphs off/on, edge.tensorrt_cache.variants()) it builds the engine into a
fresh cache directory (build time), runs it through the runtime's own
TensorRTBackend (pinned host copies included, as edge-run pays them) and prints:
max |activation difference| against eager PyTorch on the CPU over random and
gait windows (tolerance 1e-4 in FP32, 2e-2 in FP16), and per-call latency
median / p99 / p99.9 in microseconds. Eager PyTorch on CUDA is timed as the
baseline a TensorRT engine has to beat (for BiGRUs it often does not).

Exit codes: 0 every variant built and passed; 1 a parity failure or a variant
that failed to build; 2 bad arguments; 0 with a "SKIPPED" line where CUDA or
torch-tensorrt is absent (nothing to check on this machine).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from edge.backends import BackendError
from edge.bundle import BundleError, default_bundle_path, load_bundle
from edge.tensorrt_cache import reference_windows, tensorrt_available, variants
from train.export import export_bundle
from train.model import ModelConfig, build_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_backends import eager_from_bundle, gait_windows, time_calls


def _bundle(path: Path | None, scratch: Path):
    if path is not None:
        return load_bundle(path)
    if (default_bundle_path() / "manifest.json").is_file():
        return load_bundle(default_bundle_path())
    print("no default bundle yet: exporting an untrained mjca_bigru network of the paper's size")
    return export_bundle(build_model(ModelConfig()).eval(), scratch / "bundle")


def main(argv: list[str] | None = None) -> int:
    labels = [v.label for v in variants()]
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="exit codes: 0 all passed (or SKIPPED: no CUDA/torch-tensorrt), "
        "1 parity or build failure, 2 bad arguments",
    )
    parser.add_argument("--bundle", type=Path, help="bundle directory (default: the package's)")
    parser.add_argument(
        "--variants", nargs="+", default=labels, metavar="LABEL", help=f"of {', '.join(labels)}"
    )
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per variant")
    parser.add_argument("--warmup", type=int, default=200, help="untimed calls first")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.variants) - set(labels))
    if unknown:
        print(f"check_tensorrt: unknown variants {unknown}; choose from {labels}", file=sys.stderr)
        return 2
    usable, reason = tensorrt_available()
    if not usable:
        print(f"check_tensorrt: SKIPPED: {reason}")
        return 0

    from edge.backends.tensorrt_backend import TensorRTBackend

    failures = []
    with tempfile.TemporaryDirectory() as scratch:
        try:
            bundle = _bundle(args.bundle, Path(scratch))
        except (BundleError, OSError) as exc:
            print(f"check_tensorrt: {exc}", file=sys.stderr)
            return 1
        manifest = bundle.manifest
        windows = np.concatenate(
            [
                reference_windows(bundle, 32),
                gait_windows(32, manifest.window, manifest.sample_rate_hz),
            ]
        )
        eager = eager_from_bundle(bundle)
        with torch.inference_mode():
            expected = eager(torch.from_numpy(windows)).numpy()
        timing_windows = gait_windows(args.calls, manifest.window, manifest.sample_rate_hz)
        print(
            f"GPU {torch.cuda.get_device_name()}; bundle {bundle.directory} "
            f"({manifest.architecture.get('architecture')}, window {manifest.window}); "
            f"{args.calls} calls after {args.warmup} warm-up"
        )
        eager_cuda = eager_from_bundle(bundle).to("cuda")

        def call_eager_cuda(x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return eager_cuda(torch.from_numpy(x).to("cuda")).cpu().numpy()[0]

        us = time_calls(call_eager_cuda, timing_windows, args.warmup)
        print(
            f"{'variant':<28}{'build s':>9}{'max|diff|':>11}{'tol':>8}{'p50 us':>9}"
            f"{'p99 us':>9}{'p99.9 us':>10}  result"
        )
        p50, p99, p999 = np.percentile(us, [50, 99, 99.9])
        print(
            f"{'eager PyTorch CUDA':<28}{'':>9}{'':>11}{'':>8}{p50:>9.0f}{p99:>9.0f}{p999:>10.0f}"
        )
        for settings in (v for v in variants() if v.label in args.variants):
            cache = Path(scratch) / "cache" / settings.label
            started = time.perf_counter()
            try:
                backend = TensorRTBackend(bundle, settings, cache_dir=cache)
            except BackendError as exc:
                failures.append(settings.label)
                elapsed = time.perf_counter() - started
                print(f"{settings.label:<28}{elapsed:>9.1f}  FAILED to build: {exc}")
                continue
            got = np.stack([backend.infer(w[None]) for w in windows])
            error = float(np.max(np.abs(got - expected)))
            passed = error <= settings.tolerance
            if not passed:
                failures.append(settings.label)
            us = time_calls(backend.infer, timing_windows, args.warmup)
            backend.close()
            p50, p99, p999 = np.percentile(us, [50, 99, 99.9])
            print(
                f"{settings.label:<28}{backend.report.seconds:>9.1f}{error:>11.1e}"
                f"{settings.tolerance:>8.0e}{p50:>9.0f}{p99:>9.0f}{p999:>10.0f}  "
                f"{'ok' if passed else 'PARITY FAILURE'}"
            )
    if failures:
        print(f"check_tensorrt: {len(failures)} variant(s) failed: {', '.join(failures)}")
        return 1
    print("check_tensorrt: every variant built and matched eager PyTorch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
