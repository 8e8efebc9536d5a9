"""edge-bench: what edge-run achieves on the machine it runs on, against what it replaces.

    edge-bench [--bundle DIR] [--backends all|LIST] [--rate HZ] [--seconds S]
               [--port PORT | --simulate] [--json FILE] [--plot FILE.png]
               [--target-p99-us US] [--check]

One run measures: every stage of the answer path alone (edge.bench.stages);
edge-run's loop end to end through the serial path in both inference modes
(edge.bench.end_to_end); the highest sustainable rate by a short ramp; the
reference rows (edge.bench.reference) with the speed-up ratios; the machine
(edge.machine). It prints a table and a verdict line against the p99 target,
and optionally writes the JSON object and a latency histogram. Exit codes: 0,
1 (the verdict failed and --check was given, or a failure of the program itself),
2 (bad input, one line on stderr, checked before any timing starts).

Other processes on the machine show in the tails (p99, p99.9): the load average
before and after is part of the report; quote ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from firmware_bridge.command_line import (
    EXIT_FAILURE,
    UsageError,
    bad_input,
    command_parser,
    run_command,
)

DEFAULT_RAMP_HZ = "1000,2000,3000,4000,5000"
MAX_RATE_HZ = 10_000.0


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        "edge-bench",
        description="Measure edge-run on this machine: every stage's latency, end to end "
        "through the serial path in both inference modes, the highest sustainable rate, and "
        "reference rows (eager PyTorch per sample, static optimisation per frame) with the "
        "speed-up ratios. Figures in µs.",
        epilog="Examples: edge-bench;  edge-bench --json bench.json --plot latency.png;  "
        "edge-bench --port /dev/ttyTHS1 --rate 1000 --check",
    )
    p.add_argument("--bundle", type=Path, help="bundle directory (default: the shipped one)")
    p.add_argument(
        "--backends",
        default="all",
        help="all (every backend that loads here; default) or a comma-separated "
        "list of tensorrt, onnxruntime, torch; the first that loads runs end to end",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=1000.0,
        metavar="HZ",
        help="sample rate of the input and the end-to-end runs (default 1000); with "
        "--port, the rate the device sends at",
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=10.0,
        metavar="S",
        help="length of each end-to-end run, one per inference mode (default 10)",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--simulate",
        action="store_true",
        help="end to end against the device simulator on a pseudo-terminal (the default)",
    )
    source.add_argument("--port", help="end to end against the device on this serial port")
    p.add_argument("--baud", type=int, help="with --port: bit/s (default: edge-run's)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    p.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="also draw the end-to-end latency histograms with p50, p99, p99.9",
    )
    p.add_argument(
        "--target-p99-us",
        type=float,
        default=1000.0,
        metavar="US",
        help="the verdict's end-to-end p99 target at --rate (default 1000 µs); also "
        "the ramp's budget",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when the verdict fails (default: report it, exit 0)",
    )
    p.add_argument("--frames", type=int, default=3000, help="calls per stage (default 3000)")
    p.add_argument(
        "--ramp",
        default=DEFAULT_RAMP_HZ,
        metavar="HZ,HZ,...|none",
        help=f"rates of the ramp (default {DEFAULT_RAMP_HZ}); none skips it",
    )
    p.add_argument(
        "--ramp-seconds",
        type=float,
        default=3.0,
        metavar="S",
        help="length of each ramp run (default 3)",
    )
    p.add_argument(
        "--reference-calls",
        type=int,
        default=1000,
        metavar="N",
        help="calls of the eager network; the static optimisation solves a fifth "
        "as many frames (default 1000; 0 skips the reference rows)",
    )
    p.add_argument(
        "--worker",
        choices=("thread", "process"),
        default="thread",
        help="model-rate mode: the network on a thread (default) or in a process",
    )
    p.add_argument(
        "--rt-priority",
        type=int,
        metavar="N",
        help="run under SCHED_FIFO at priority N, as edge-run --rt-priority",
    )
    return p


def _check_numbers(args: argparse.Namespace) -> None:
    if not 1.0 <= args.rate <= MAX_RATE_HZ:
        raise UsageError(f"--rate must lie in 1..{MAX_RATE_HZ:g} Hz, got {args.rate:g}")
    for name in ("seconds", "ramp_seconds", "target_p99_us"):
        if not getattr(args, name) > 0:
            raise UsageError(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    if args.frames < 100:
        raise UsageError(f"--frames must be at least 100, got {args.frames}")
    if args.reference_calls < 0:
        raise UsageError(f"--reference-calls must be >= 0, got {args.reference_calls}")


def parse_ramp(text: str) -> list[float]:
    """The ramp's rates (Hz, rising); empty for "none"."""
    if text.strip().lower() == "none":
        return []
    try:
        rates = sorted({float(r) for r in text.split(",") if r.strip()})
    except ValueError:
        raise UsageError(
            f"--ramp expects rates like {DEFAULT_RAMP_HZ} or none; got {text!r}"
        ) from None
    if not rates or not all(1.0 <= r <= MAX_RATE_HZ for r in rates):
        raise UsageError(f"--ramp rates must lie in 1..{MAX_RATE_HZ:g} Hz; got {text!r}")
    return rates


def _check_outputs(args: argparse.Namespace) -> None:
    from edge.bench.report import plot_formats

    for flag, path in (("--json", args.json), ("--plot", args.plot)):
        if path is not None and not path.parent.resolve().is_dir():
            raise UsageError(f"{flag} {path}: the folder {path.parent} does not exist")
    if args.plot is not None:
        formats = plot_formats()
        if formats is None:
            raise UsageError(
                "--plot needs matplotlib, which is not installed (pip install matplotlib)"
            )
        suffix = args.plot.suffix.lstrip(".").lower()
        if suffix not in formats:
            raise UsageError(
                f"--plot {args.plot}: unknown extension {suffix or '(none)'!r}; "
                f"choose one of {', '.join(sorted(formats))}"
            )


def _check_port(port: str | None) -> None:
    from firmware_bridge.link import not_a_serial_port, serial_ports

    if port is None or "://" in port:
        return
    problem = not_a_serial_port(port)
    if problem:
        raise UsageError(f"--port {problem}")
    if not os.path.exists(port):
        found = ", ".join(serial_ports()) or "none found"
        raise UsageError(f"--port {port} does not exist (serial ports here: {found})")


def load_backends(bundle: Any, text: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(loaded backends by name, in order; why each other one cannot load here). "all"
    tries every backend; a named one that cannot load is a UsageError naming those that
    can."""
    from edge.backends import FALLBACK_ORDER, BackendError, select_backend

    asked = [b.strip() for b in text.split(",") if b.strip()]
    every = asked == ["all"]
    names = list(FALLBACK_ORDER) if every else asked
    unknown = [n for n in names if n not in FALLBACK_ORDER]
    if unknown or not names:
        raise UsageError(
            f"--backends: unknown backend(s) {', '.join(unknown) or '(none)'}; "
            f"choose all or from {', '.join(FALLBACK_ORDER)}"
        )
    loaded: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    for name in names:
        try:
            backend = select_backend(bundle, name, threads=1)
            backend.warmup(200)
            loaded[name] = backend
        except BackendError as exc:
            unavailable[name] = str(exc)
    if unavailable and not every:
        name, why = next(iter(unavailable.items()))
        others = [n for n in FALLBACK_ORDER if n not in names]
        here = list(loaded) + [n for n in others if _loads(bundle, n)]
        raise UsageError(
            f"--backends: {name} cannot load here ({why}); available here: "
            f"{', '.join(here) or 'none'}"
        )
    if not loaded:
        raise UsageError(
            "--backends: no backend loads here: "
            + "; ".join(f"{n}: {why}" for n, why in unavailable.items())
        )
    return loaded, unavailable


def _loads(bundle: Any, name: str) -> bool:
    from edge.backends import BackendError, select_backend

    try:
        select_backend(bundle, name, threads=1)
    except BackendError:
        return False
    return True


def _prepare(args: argparse.Namespace) -> tuple[Any, dict[str, Any], dict[str, str], list[float]]:
    """Everything checked and loaded before any timing: (bundle, backends, unavailable,
    ramp rates)."""
    from edge.bundle import BundleError, default_bundle_path, load_bundle

    _check_numbers(args)
    ramp = parse_ramp(args.ramp)
    _check_outputs(args)
    _check_port(args.port)
    if args.rt_priority is not None:
        from edge.realtime import RealtimeError, set_realtime_priority

        with bad_input(RealtimeError):
            print(set_realtime_priority(args.rt_priority), file=sys.stderr)
    with bad_input(BundleError, prefix="bundle: "):
        bundle = load_bundle(args.bundle or default_bundle_path())
    backends, unavailable = load_backends(bundle, args.backends)
    return bundle, backends, unavailable, ramp


def measure(
    args: argparse.Namespace,
    bundle: Any,
    backends: dict[str, Any],
    unavailable: dict[str, str],
    ramp_hz: list[float],
) -> dict[str, Any]:
    """Run every measurement; returns the report (edge.bench.report reads it)."""
    from edge.bench.end_to_end import bench_end_to_end, find_max_sustainable
    from edge.bench.reference import bench_references
    from edge.bench.report import MODES, speedups, verdict
    from edge.bench.stages import bench_stages
    from edge.inference import InferenceSettings
    from edge.machine import describe_machine

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    load_before = os.getloadavg()[0]
    machine = describe_machine()
    say(f"stages: {args.frames} calls each ...")
    stages, window = bench_stages(bundle, backends, args.frames, args.rate, progress=say)
    e2e_backend = next(iter(backends))

    def run(mode: str, rate_hz: float, seconds: float) -> dict[str, Any]:
        settings = InferenceSettings.for_model_rate(
            bundle.manifest.sample_rate_hz, mode=mode, worker=args.worker
        )
        return bench_end_to_end(
            bundle,
            e2e_backend,
            rate_hz,
            seconds,
            inference=settings,
            port=args.port,
            baud=args.baud,
        )

    end_to_end = {}
    for mode in MODES:
        say(f"end to end, {mode} inference: {args.rate:g} Hz for {args.seconds:g} s ...")
        end_to_end[mode] = run(mode, args.rate, args.seconds)
    ramp: dict[str, Any] = {
        "rates_hz": ramp_hz,
        "seconds": args.ramp_seconds,
        "budget_us": args.target_p99_us,
        "steps": [],
        "note": None,
    }
    best = None
    if args.port is not None:
        ramp["note"] = "not run: a real device sends at its own rate (use --simulate)"
    elif not ramp_hz:
        ramp["note"] = "not run (--ramp none)"
    else:
        say(f"ramp: {', '.join(f'{r:g}' for r in ramp_hz)} Hz, {args.ramp_seconds:g} s each ...")
        best, ramp["steps"] = find_max_sustainable(
            lambda rate: run(MODES[0], rate, args.ramp_seconds), ramp_hz, args.target_p99_us
        )
    if args.reference_calls:
        say("reference rows: eager PyTorch per sample, static optimisation per frame ...")
        reference = bench_references(
            bundle, window, args.reference_calls, max(args.reference_calls // 5, 10)
        )
    else:
        reference = {
            "eager_torch_us": None,
            "static_optimization_us": None,
            "notes": ["reference rows skipped (--reference-calls 0)"],
        }
    default = end_to_end[MODES[0]]
    return {
        "bundle": str(bundle.directory),
        "rate_hz": args.rate,
        "seconds": args.seconds,
        "source": args.port or "simulator",
        "target_p99_us": args.target_p99_us,
        "machine": machine,
        "load_average": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "stages": stages,
        "stages_unavailable": unavailable,
        "end_to_end_us": default["end_to_end_us"],
        "skipped": default["skipped"],
        "end_to_end": end_to_end,
        "max_sustainable_hz": best,
        "ramp": ramp,
        "reference": reference,
        "speedup": speedups(default["end_to_end_us"], reference),
        "verdict": verdict(default, args.target_p99_us),
    }


def _run(args: argparse.Namespace) -> int:
    bundle, backends, unavailable, ramp = _prepare(args)
    from edge.bench.report import format_report, plot_latency

    report = measure(args, bundle, backends, unavailable, ramp)
    print(format_report(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    if args.plot is not None:
        plot_latency(report, args.plot)
    return EXIT_FAILURE if args.check and not report["verdict"]["pass"] else 0


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
