"""``train-export``: a training run as a portable bundle (``train.export``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from firmware_bridge.command_line import (
    PATH_ERRORS,
    UsageError,
    bad_input,
    command_parser,
    run_command,
)
from train.cli import add_out_argument


def _parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "train-export",
        description=(
            "Export a training run as a portable bundle: manifest.json, model.pt2 "
            "(torch.export), model.onnx and subject.json. Copy the bundle directory to the "
            "device; on a Jetson the runtime compiles a TensorRT engine at first start "
            "(docs/jetson.md)."
        ),
    )
    parser.add_argument("run", type=Path, help="training run directory (train-fit --out)")
    add_out_argument(parser, "DIR", "bundle directory to write")
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


def _run(args: argparse.Namespace) -> int:
    if args.fp16 and not args.tensorrt:
        raise UsageError("--fp16 applies to --tensorrt only")
    from edge.bundle import BundleError
    from edge.tensorrt_cache import TensorRTError, TensorRTSettings
    from train.export import PARITY_TOLERANCE, ExportError, export_bundle
    from train.run import RunError

    settings = (
        TensorRTSettings(precision="fp16" if args.fp16 else "fp32") if args.tensorrt else None
    )
    with bad_input(ExportError, RunError, BundleError, TensorRTError, *PATH_ERRORS):
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
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
