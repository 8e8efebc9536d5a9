"""``train-export``: a training run as a portable bundle (``train.export``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train-export",
        description=(
            "Export a training run as a portable bundle: manifest.json, model.pt2 "
            "(torch.export), model.onnx and subject.json. Copy the bundle directory to the "
            "device; on a Jetson the runtime compiles a TensorRT engine at first start "
            "(docs/jetson.md)."
        ),
    )
    parser.add_argument("run", type=Path, help="training run directory (train-fit --out)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="bundle directory to write")
    parser.add_argument(
        "--tensorrt",
        action="store_true",
        help="also compile and check a TensorRT engine here (needs CUDA and torch-tensorrt), "
        "and record its settings in the manifest",
    )
    parser.add_argument(
        "--fp16", action="store_true", help="with --tensorrt: FP16 precision (looser parity)"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="TensorRT engine cache (default ~/.cache/mjca-edge)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.fp16 and not args.tensorrt:
        print("train-export: --fp16 applies to --tensorrt only", file=sys.stderr)
        return 2
    from edge.bundle import BundleError
    from edge.tensorrt_cache import TensorRTSettings
    from train.export import PARITY_TOLERANCE, ExportError, export_bundle

    settings = (
        TensorRTSettings(precision="fp16" if args.fp16 else "fp32") if args.tensorrt else None
    )
    try:
        if settings is not None:
            from edge.tensorrt_cache import require_tensorrt

            require_tensorrt()
        bundle = export_bundle(args.run, args.out, tensorrt=settings)
        print(
            f"bundle {bundle.directory}: {bundle.manifest.architecture.get('architecture')} "
            f"window {bundle.manifest.window} at {bundle.manifest.sample_rate_hz:g} Hz, "
            f"{bundle.manifest.n_muscles} muscles; ExportedProgram and ONNX agree with eager "
            f"to {PARITY_TOLERANCE:.0e}"
        )
        if settings is not None:
            from edge.tensorrt_cache import build_engine

            report = build_engine(bundle, settings, cache_dir=args.cache_dir)
            print(report.summary())
    except (ExportError, BundleError, OSError, ValueError, RuntimeError) as exc:
        print(f"train-export: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
