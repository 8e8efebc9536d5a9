"""The train-* commands' front ends: argument parsing with nothing heavy imported.

torch, scipy and matplotlib take seconds to import, so a command's module here
imports only argparse, parses, and then imports the module that does the work:
``--help`` and argument errors answer at once. The choices and defaults the parsers
show come from ``train.options`` and ``edge.backend_names``, which import nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.backend_names import CPU_PREFERENCE as CPU_BACKENDS
from train.options import ANGLE_UNITS, KINEMATICS_CUTOFF_HZ, SIDES


def add_ik_argument(
    parser: argparse.ArgumentParser,
    *,
    required: bool = True,
    each_trial: bool = False,
    note: str = "",
) -> None:
    """--ik (an inverse-kinematics .mot/.sto; with ``each_trial`` once per trial) and
    --angles-in (its unit where the header is wrong); ``note`` ends --ik's help."""
    parser.add_argument(
        "--ik",
        required=required,
        type=Path,
        action="append" if each_trial else "store",
        metavar="FILE",
        help="inverse-kinematics coordinates (.mot/.sto)" + note,
    )
    parser.add_argument(
        "--angles-in",
        choices=ANGLE_UNITS,
        help="the IK angles' unit, overriding the file's header and its plausibility check "
        "(default: the header, refused where the values contradict it)",
    )


def add_kinetics_arguments(
    parser: argparse.ArgumentParser, *, required: bool = True, each_trial: bool = False
) -> None:
    """--grf and --loads: the ground reaction of a trial (``required``: --loads must be
    given; else both or neither)."""
    action = "append" if each_trial else "store"
    parser.add_argument(
        "--grf",
        type=Path,
        action=action,
        metavar="FILE",
        help="ground reaction forces (.mot; default: the file the loads name)"
        if required
        else "ground reaction forces (.mot), with --loads: load the trial as training does",
    )
    parser.add_argument(
        "--loads",
        required=required,
        type=Path,
        action=action,
        metavar="FILE",
        help="OpenSim ExternalLoads (.xml)" + ("" if required else ", with --grf"),
    )


def add_subject_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--subject", required=True, type=Path, metavar="FILE", help="subject.json (calib-subject)"
    )


def add_side_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--side", choices=SIDES, default=SIDES[0], help="leg (default r)")


def add_lowpass_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lowpass",
        type=float,
        default=KINEMATICS_CUTOFF_HZ,
        metavar="HZ",
        help="zero-phase low-pass cut-off of the joint angles, as training applies it and "
        "as OpenSim's tools do (default %(default)s Hz; 0 = raw angles, as a device would "
        "stream them)",
    )


def add_trial_arguments(
    parser: argparse.ArgumentParser, *, each_trial: bool = False, leg: bool = True
) -> None:
    """A trial as training reads it: --ik, --angles-in, --grf, --loads and --subject; with
    ``leg`` also --side and --lowpass (which leg's angles are read and how they are
    filtered)."""
    add_ik_argument(parser, each_trial=each_trial, note="; once per trial" if each_trial else "")
    add_kinetics_arguments(parser, each_trial=each_trial)
    add_subject_argument(parser)
    if leg:
        add_leg_arguments(parser)


def add_leg_arguments(parser: argparse.ArgumentParser) -> None:
    """--side and --lowpass."""
    add_side_argument(parser)
    add_lowpass_argument(parser)


def add_rate_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """--rate: the rate the trial is resampled to (default 100 Hz, training's)."""
    parser.add_argument(
        "--rate", type=float, default=100.0, metavar="HZ", help=f"{what} (default 100 Hz)"
    )


def add_out_argument(parser: argparse.ArgumentParser, metavar: str, what: str) -> None:
    """-o/--out, the path every command writes its output to."""
    parser.add_argument("-o", "--out", required=True, type=Path, metavar=metavar, help=what)


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
