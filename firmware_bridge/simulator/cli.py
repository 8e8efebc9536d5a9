"""bridge-sim: play a device from the shell, over a new pseudo-terminal or a given port.

Bad input (a setting out of range, a port that does not open, a motion file that
cannot be played, an output folder that does not exist) ends with one line
``bridge-sim: error: …`` and exit status 2, argparse's own form (argparse's own
errors add the usage above it); a failure of the program itself (the link failing
mid-run, a bug) with one line ``bridge-sim: internal error: Type: …`` and exit
status 1, the traceback above it only with --debug. Ctrl-C ends the run early and
the report follows.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from firmware_bridge import protocol as P
from firmware_bridge.command_line import UsageError, bad_input, command_parser, run_command
from firmware_bridge.link import DEFAULT_BAUD, Link, LinkError, PseudoTerminal, open_link
from firmware_bridge.motion_file import MotionFileError
from firmware_bridge.progress import progress_bar
from firmware_bridge.simulator.config import SimulatorConfig, SimulatorConfigError
from firmware_bridge.simulator.device import DeviceSimulator

PROG = "bridge-sim"
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        PROG,
        description="Play joint angles as the device firmware would, over a pseudo-terminal "
        "(default: created here, its path printed) or any pyserial URL/port; read "
        "Estimate frames back and report round-trip latency, lost and late "
        "estimates. Ctrl-C ends the run early; the report follows.",
    )
    parser.add_argument("--port", help="pyserial URL or device path (default: a new pty)")
    parser.add_argument(
        "--baud", type=int, default=DEFAULT_BAUD, help=f"baud rate (default {DEFAULT_BAUD})"
    )
    parser.add_argument("--rate", type=float, default=100.0, help="samples per second")
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds to play (default 10; 0: until Ctrl-C)"
    )
    parser.add_argument("--motion", help="OpenSim .mot/.sto to play (default: normative gait)")
    parser.add_argument("--period", type=float, help="gait cycle period in s (default 1.235)")
    parser.add_argument(
        "--counts-per-rev",
        type=int,
        default=0,
        help="quantise like an encoder with this many counts per revolution",
    )
    parser.add_argument(
        "--send-counts",
        action="store_true",
        help="send raw int32 counts (needs --counts-per-rev) instead of radians",
    )
    parser.add_argument("--noise-deg", type=float, default=0.0, help="angle noise std (deg)")
    parser.add_argument("--drop", type=float, default=0.0, help="probability a sample is lost")
    parser.add_argument("--jitter-us", type=float, default=0.0, help="timestamp jitter std (µs)")
    parser.add_argument(
        "--nan", type=float, default=0.0, help="probability a sample carries a NaN channel"
    )
    parser.add_argument(
        "--garbage", type=float, default=0.0, help="probability of random bytes before a sample"
    )
    parser.add_argument(
        "--timestamp-start-us",
        type=int,
        default=0,
        help="device clock at start, µs (near 4294967295 tests wrapping)",
    )
    parser.add_argument(
        "--wait-for-host",
        type=float,
        default=60.0,
        help="seconds to wait for the host's Hello/Heartbeat before streaming",
    )
    parser.add_argument(
        "--late-ms",
        type=float,
        default=50.0,
        help="an estimate later than this after its sample counts as late",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "-o", "--out", type=Path, help="also write the report's figures to this JSON file"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), _run, argv)


def _config(args: argparse.Namespace) -> SimulatorConfig:
    """The run the flags describe; a setting out of range is bad input."""
    with bad_input(SimulatorConfigError):
        return SimulatorConfig(
            rate_hz=args.rate,
            duration_s=args.duration if args.duration != 0 else None,
            motion_file=args.motion,
            gait_period_s=args.period,
            encoding=P.ENCODING_COUNTS if args.send_counts else P.ENCODING_RADIANS,
            counts_per_rev=args.counts_per_rev,
            noise_rad=math.radians(args.noise_deg),
            drop_probability=args.drop,
            jitter_us=args.jitter_us,
            nan_probability=args.nan,
            garbage_probability=args.garbage,
            timestamp_start_us=args.timestamp_start_us,
            wait_for_host_s=args.wait_for_host,
            late_after_ms=args.late_ms,
            seed=args.seed,
            keep_records=0,  # the report's figures are all bridge-sim prints
        )


def _check_out(out: Path | None) -> None:
    """Refuse an output path that could not be written, before a run that may be long."""
    if out is None:
        return
    if out.is_dir():
        raise UsageError(f"-o/--out {out} is a folder: give a file name such as {out / 'sim.json'}")
    if not out.parent.is_dir():
        raise UsageError(f"-o/--out {out}: the folder {out.parent} does not exist")


def _open_link(args: argparse.Namespace) -> Link:
    if args.port is None:
        return PseudoTerminal()
    with bad_input(LinkError):
        return open_link(args.port, args.baud)


def _run(args: argparse.Namespace) -> int:
    config = _config(args)
    _check_out(args.out)
    link = _open_link(args)
    interrupted = threading.Event()
    try:
        if isinstance(link, PseudoTerminal):
            print(f"device path: {link.device_path}", flush=True)
        if config.wait_for_host_s > 0:
            print(f"waiting up to {config.wait_for_host_s:g} s for the host", flush=True)
        with progress_bar(
            total=config.n_samples, unit="sample", mininterval=0.5, disable=not sys.stderr.isatty()
        ) as bar:
            with bad_input(MotionFileError):
                simulator = DeviceSimulator(config, link, progress=bar.update)

            def stop_on_ctrl_c(signum: int, frame: FrameType | None) -> None:
                interrupted.set()
                simulator.stop()

            signal.signal(signal.SIGINT, stop_on_ctrl_c)
            report = simulator.run()
    except KeyboardInterrupt:  # Ctrl-C while starting, before the handler is set
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        link.close()
    print(report.summary())
    if args.out is not None:
        with open(args.out, "w", encoding="utf-8") as out:
            json.dump(report.to_json(), out, indent=1, default=str)
    if interrupted.is_set() and config.duration_s is not None:
        print(f"{PROG}: interrupted before the end of the run", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0
