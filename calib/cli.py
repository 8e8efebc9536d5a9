"""``calib-subject``: describe a person's leg (subject.json) or zero the sensors (sensors.json)."""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
import time
from pathlib import Path

from calib.coordinates import COORDINATES, PAPER_MUSCLES, SAGITTAL_COORDINATES
from calib.path_fit import CHECK_RANGE_DEG
from calib.port_capture import capture_from_port
from calib.scaling import (
    FORCE_MASS_EXPONENT,
    apply_strength,
    generic_subject,
    scale_subject,
    select_muscles,
)
from calib.sensors import SensorError, load_sensors
from calib.subject import SubjectError
from calib.zeroing import DEFAULT_MAX_STD_DEG, read_capture, zero_sensors
from firmware_bridge.command_line import PATH_ERRORS, bad_input, command_parser, run_command


def _wrapped(text: str, indent: int = 24) -> str:
    """``text`` as lines of at most 94 characters, each indented by ``indent`` spaces."""
    pad = " " * indent
    return textwrap.fill(text, width=94, initial_indent=pad, subsequent_indent=pad)


_BOX = ", ".join(f"{c} {lo:g}..{hi:g}" for c, (lo, hi) in CHECK_RANGE_DEG.items())
EPILOG = f"""\
modes (choose one):
  --height H --mass M   generic gait2392 scaled to the person: lengths x height ratio,
                        masses x mass ratio, inertias x mass*height^2 ratio, fibre/tendon
                        lengths and muscle paths x leg-length ratio, max isometric forces x
                        mass ratio^{FORCE_MASS_EXPONENT:.3f} (geometric similarity, Jaric 2002).
  --osim MODEL.osim     read a scaled OpenSim model (needs the opensim extra): segments, hip
                        centre, joint axes, muscle parameters; muscle lengths fitted as
                        polynomials of the coordinates each muscle crosses; prints the
                        fit-error table against OpenSim at poses not used in the fit, within
                        (deg):
{_wrapped(_BOX)}
                        --height H sets the height (else estimated from the leg length).
  --zero CAPTURE.csv    zero the sensors from a quiet standing capture and write sensors.json;
                        a capture that moves more than --max-std-deg is refused. The CSV has
                        a header of channel names (an optional time column is ignored); without
                        --sensors-in it holds three columns or five, in OpenSim rad:
{_wrapped(", ".join(SAGITTAL_COORDINATES) + "; or " + ", ".join(COORDINATES))}
  --zero-port PORT      the same, recording --seconds of standing from the device itself.

coordinates (the order of q): {", ".join(COORDINATES)}.
muscles: default all: every right-leg muscle crossing the hip, knee or ankle (43 in gait2392);
  --muscles paper: the paper's ten:
{_wrapped(", ".join(PAPER_MUSCLES), 4)};
  --muscles NAME,NAME,...: those muscles.

examples:
  calib-subject --height 1.75 --mass 68 -o subject.json
  calib-subject --height 1.75 --mass 68 --muscles paper --strength vas_lat_r=0.6 -o subject.json
  calib-subject --osim subject01_scaled.osim -o subject.json
  calib-subject --zero standing.csv --sensors-in sensors.json -o sensors.json
  calib-subject --zero-port /dev/ttyACM0 --seconds 5 -o sensors.json
"""


def _strength(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        scale = float(value)
    except ValueError:
        scale = math.nan
    if not sep or not name.strip() or not math.isfinite(scale) or scale < 0:
        raise argparse.ArgumentTypeError(
            f"expected NAME=SCALE with SCALE a number >= 0 (e.g. vas_lat_r=0.6), got {text!r}"
        )
    return name.strip(), scale


def _parser() -> argparse.ArgumentParser:
    p = command_parser(
        "calib-subject",
        description="Build a person's subject.json (leg segments and muscles) or sensors.json.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--osim", type=Path, metavar="MODEL", help="scaled OpenSim model (.osim)")
    mode.add_argument("--zero", type=Path, metavar="CAPTURE", help="standing capture (.csv)")
    mode.add_argument(
        "--zero-port",
        metavar="PORT",
        help="record the standing capture from the device (path or pyserial URL)",
    )
    p.add_argument("--height", type=float, metavar="H", help="standing height (m)")
    p.add_argument("--mass", type=float, metavar="M", help="body mass (kg)")
    p.add_argument(
        "--muscles",
        metavar="SET",
        help="'all' (default), 'paper' (the paper's ten) or a comma-separated list of muscle names",
    )
    p.add_argument(
        "--strength",
        type=_strength,
        action="append",
        default=[],
        metavar="NAME=SCALE",
        help="per-muscle strength scale (1 = as modelled); repeatable",
    )
    p.add_argument(
        "--sensors-in",
        type=Path,
        metavar="SENSORS",
        help="with --zero or --zero-port: sensors.json giving channels, coordinates, signs, scales",
    )
    p.add_argument(
        "--max-std-deg",
        type=float,
        default=DEFAULT_MAX_STD_DEG,
        help="with --zero or --zero-port: largest allowed std of a joint angle "
        f"(deg, default {DEFAULT_MAX_STD_DEG})",
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=5.0,
        help="with --zero-port: how long to record (s, default 5)",
    )
    p.add_argument("--baud", type=int, help="with --zero-port: baud rate (default the link's)")
    p.add_argument(
        "-o", "--out", type=Path, required=True, metavar="FILE", help="file to write (.json)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.zero is not None or args.zero_port is not None:
        template = load_sensors(args.sensors_in) if args.sensors_in else None
        if args.zero is not None:
            capture = read_capture(args.zero)
        else:
            capture = capture_from_port(
                args.zero_port, args.seconds, template, args.baud, progress=not args.quiet
            )
        sensors = zero_sensors(capture, template, args.max_std_deg)
        sensors.save(args.out)
        print(
            f"wrote {args.out}: "
            + ", ".join(
                f"{c.name}->{c.coordinate} zero {c.zero_offset:.6g}"
                for c in sensors.channels
                if c.coordinate
            )
        )
        return
    if args.sensors_in is not None:
        parser.error("--sensors-in goes with --zero or --zero-port")
    if args.osim is not None:
        if args.mass is not None:
            parser.error("--mass goes with --height (scaling); --osim reads the model's mass")
        from calib.osim_import import format_report, import_osim, leg_length  # opensim extra

        generic = generic_subject()
        start = time.monotonic()
        result = import_osim(
            args.osim,
            muscles=args.muscles,
            height=args.height,
            generic_leg_length=leg_length(dict(generic.segments)),
            generic_height=generic.body.height,
            progress=not args.quiet,
        )
        subject = result.subject
        print(format_report(result.reports))
        print(f"OpenSim evaluation and fitting took {time.monotonic() - start:.0f} s")
        if args.height is None:
            print(
                f"height {subject.body.height:.3f} m estimated from the leg length "
                "(generic gait2392 proportions); pass --height H to set it"
            )
    else:
        if args.height is None or args.mass is None:
            parser.error(
                "give --height H --mass M, or --osim MODEL, or --zero CAPTURE, or --zero-port PORT"
            )
        generic = select_muscles(generic_subject(), args.muscles)
        subject = scale_subject(generic, args.height, args.mass)
    if args.strength:
        subject = apply_strength(subject, dict(args.strength))
    subject.save(args.out)
    print(
        f"wrote {args.out}: height {subject.body.height:.3f} m, mass {subject.body.mass:.2f} kg, "
        f"{len(subject.muscles)} muscles"
    )


def main(argv: list[str] | None = None) -> int:
    parser = _parser()

    def work(args: argparse.Namespace) -> None:
        with bad_input(SubjectError, SensorError, *PATH_ERRORS):
            _run(args, parser)

    return run_command(parser, work, argv)


if __name__ == "__main__":
    sys.exit(main())
