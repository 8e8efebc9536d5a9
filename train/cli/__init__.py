"""The train-* commands' front ends: argument parsing with nothing heavy imported.

torch, scipy and matplotlib take seconds to import, so a command's module here
imports only argparse, parses, and then imports the module that does the work:
``--help`` and argument errors answer at once. The defaults shown in ``--help`` that
belong to those modules are repeated here and held equal to them by a test.
"""

from __future__ import annotations

import argparse
import sys

KINEMATICS_CUTOFF_HZ = 6.0
"""``train.trial.TrialConfig().kinematics_cutoff_hz``."""
ANGLE_UNITS = ("degrees", "radians")
"""``train.data_checks.ANGLE_UNITS``: the --angles-in choices."""
CPU_BACKENDS = ("onnxruntime", "torch")
"""``edge.backends.CPU_PREFERENCE``: how a bundle can run on the CPU, fastest first."""


def add_angle_arguments(parser: argparse.ArgumentParser, side: bool = True) -> None:
    """--side, --lowpass and --angles-in: which leg's IK angles are read, how they are
    filtered (as in training) and which unit they are in when the header is wrong."""
    if side:
        parser.add_argument("--side", choices=("r", "l"), default="r", help="leg (default r)")
    parser.add_argument(
        "--lowpass",
        type=float,
        default=KINEMATICS_CUTOFF_HZ,
        metavar="HZ",
        help="zero-phase low-pass of the joint angles as training applies it "
        "(default %(default)s Hz; 0 = raw angles, as a device would stream them)",
    )
    add_units_argument(parser)


def add_units_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--angles-in",
        choices=ANGLE_UNITS,
        help="the IK angles' unit, overriding the file's header and its plausibility check "
        "(default: the header, refused where the values contradict it)",
    )


PRECISIONS = ("fp32", "bf16", "fp16")
"""``train.device.PRECISIONS``."""


def add_device_argument(parser: argparse.ArgumentParser, default: str, what: str) -> None:
    """--device: auto, cpu, cuda or cuda:N (``train.device.resolve_device``)."""
    parser.add_argument(
        "--device",
        default=default,
        metavar="DEVICE",
        help=f"where {what}: auto (CUDA where torch sees a GPU, else the CPU), cpu, cuda or "
        f"cuda:N (default {default}; cuda without a GPU is refused)",
    )


def add_inference_arguments(parser: argparse.ArgumentParser) -> None:
    """--backend, --threads and --device of a network that runs over a whole recording."""
    parser.add_argument(
        "--backend",
        choices=CPU_BACKENDS,
        default=CPU_BACKENDS[0],
        help="how a bundle runs: its ONNX graph in ONNX Runtime (default) or its exported "
        "program in PyTorch (a training run always runs in PyTorch)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="intra-op CPU threads (default 1: a second thread spins when another process "
        "keeps the CPU busy)",
    )
    add_device_argument(
        parser,
        "cpu",
        "a training run's network runs (a bundle always runs on the CPU here; on a GPU, "
        "edge-run's TensorRT backend runs it)",
    )


def lowpass_hz(args: argparse.Namespace) -> float | None:
    """The --lowpass cut-off in Hz, None for raw angles (0)."""
    return args.lowpass if args.lowpass > 0 else None


def angles_in_degrees(args: argparse.Namespace) -> bool | None:
    """--angles-in as ``read_storage``'s ``angles_in_degrees`` (None: trust the header)."""
    return None if args.angles_in is None else args.angles_in == "degrees"


def fail(prog: str, exc: BaseException, code: int = 2) -> int:
    """Print ``exc`` as the command's one error line; returns the exit code."""
    message = " ".join(str(exc).split())
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code
