"""edge-run: answer every joint-angle sample of the device with a muscle estimate.

    edge-run --port /dev/ttyUSB0 [--bundle DIR] [--sensors sensors.json] ...
    edge-run --simulate [--rate 1000]      # no hardware: the device simulator on a pty
    edge-run --replay trial.mot [--fast]   # a recorded trial through the same loop

Bad input (a missing bundle, a bad sensors file, a port that cannot be used, a
log that cannot be written, a real-time setting that is not permitted) is one line
on stderr and exit code 2, before the model is loaded where it can be; a failure of
the program itself is exit code 1 (firmware_bridge.command_line).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from edge.backend_names import BACKEND_NAMES as BACKENDS
from firmware_bridge.command_line import UsageError, bad_input, command_parser, run_command
from firmware_bridge.link import DEFAULT_BAUD, LinkError

DEFAULT_SIMULATOR_RATE_HZ = 200.0
SIMULATOR_SAFETY_S = 60.0
"""A simulated run stops this long after its duration should the simulator hang."""
END_STREAM_GRACE_S = 2.0


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        "edge-run",
        description=(
            "Real-time muscle activation and force estimation: reads JointSample frames "
            "(firmware_bridge/PROTOCOL.md) from a serial port, answers each with an Estimate "
            "frame (activations, forces, joint torques), logs every estimate and shows them "
            "live."
        ),
        epilog=(
            "Examples: edge-run --simulate;  edge-run --simulate --rate 1000 --json-status "
            "--duration 10;  edge-run --port /dev/ttyUSB0 --sensors sensors.json --log run.sto;  "
            "edge-run --replay walk_ik.mot --fast --log walk.sto. "
            "Stop with Ctrl-C (SIGINT) or SIGTERM: the log is flushed and a summary printed."
        ),
    )
    src = p.add_argument_group("input (one of --port, --simulate, --replay)")
    src.add_argument(
        "--port", help="serial device path or any pyserial URL (socket://, rfc2217://...)"
    )
    src.add_argument(
        "--wait",
        action="store_true",
        help="with --port: wait for a port that does not exist yet (default: refuse)",
    )
    src.add_argument(
        "--baud", type=int, default=DEFAULT_BAUD, help=f"bit/s (default {DEFAULT_BAUD})"
    )
    src.add_argument(
        "--simulate",
        action="store_true",
        help="start the device simulator (built-in gait) as a separate process on a "
        "pseudo-terminal and run against it; the default bundle unless --bundle is given",
    )
    src.add_argument(
        "--rate",
        type=float,
        metavar="HZ",
        help=f"with --simulate: its sample rate (default "
        f"{DEFAULT_SIMULATOR_RATE_HZ:g} Hz); a real device sets its own",
    )
    src.add_argument(
        "--replay",
        type=Path,
        metavar="FILE",
        help="play a recorded trial (OpenSim .mot/.sto with the columns the "
        "network reads, e.g. hip_flexion_r, knee_angle_r, ankle_angle_r) through "
        "the loop at its own pace",
    )
    src.add_argument(
        "--fast",
        action="store_true",
        help="with --replay: as fast as possible, the network inline at the model "
        "rate (the same answers on any machine)",
    )
    src.add_argument(
        "--sensors",
        type=Path,
        help="sensors.json mapping channels to coordinates (default: one channel "
        "per coordinate the bundle's network reads, in radians, in the order "
        "hip_flexion, hip_adduction, hip_rotation, knee_angle, ankle_angle)",
    )
    model = p.add_argument_group("model")
    model.add_argument(
        "--bundle", type=Path, help="bundle directory (default: the bundle shipped in the package)"
    )
    model.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="the inference backend (default auto: the fastest that loads here)",
    )
    model.add_argument(
        "--inference",
        choices=("model-rate", "per-sample"),
        default="model-rate",
        help="model-rate (default): the network runs at --inference-rate on "
        "its own thread and every sample is answered at once with its newest "
        "output extrapolated to the sample; per-sample: the network runs on "
        "every sample's window before it is answered",
    )
    model.add_argument(
        "--inference-rate",
        type=float,
        metavar="HZ",
        help="model-rate: how often the network runs (default: twice the "
        "bundle's rate, 200 Hz for the default bundle; more often carries the "
        "activations a shorter way, each run costs one network evaluation off "
        "the answer path)",
    )
    model.add_argument(
        "--inference-worker",
        choices=("thread", "process"),
        default="thread",
        help="model-rate: run the network on a thread of edge-run (default) or in "
        "a process of its own, which shares no interpreter lock with the answers",
    )
    model.add_argument(
        "--max-activation-age",
        type=float,
        metavar="MS",
        help="answers whose activations are older than this carry "
        "ACTIVATION_STALE (default: the bundle's max_activation_age_ms, else "
        "three model periods)",
    )
    model.add_argument(
        "--report-muscles",
        metavar="all|NAME,...",
        help="the muscles whose activations and forces go on the wire and into "
        "the log (default: the bundle's report_muscles, the paper's ten; all: "
        "every modelled muscle). Every muscle is modelled either way: the "
        "torques hold all of them",
    )
    model.add_argument(
        "--range-margin",
        type=float,
        default=0.1,
        metavar="RAD",
        help="angles beyond the subject's joint ranges by more than this (rad) "
        "are flagged INPUT_OUT_OF_RANGE (default 0.1)",
    )
    out = p.add_argument_group("output")
    out.add_argument("--out-port", help="send estimates to this port instead of --port")
    out.add_argument(
        "--log", type=Path, help="estimate log: .sto (OpenSim storage) or any other suffix for CSV"
    )
    out.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="stop after S seconds (default: run until Ctrl-C; with --simulate: the "
        "simulator plays S seconds and edge-run stops when it has answered them)",
    )
    out.add_argument(
        "--json-status",
        action="store_true",
        help="status lines as JSON objects on stdout; the last line is the summary",
    )
    out.add_argument(
        "--view",
        action="store_true",
        help="show one bar per muscle (activation and force) instead of a line",
    )
    rt = p.add_argument_group("real time (Linux)")
    rt.add_argument(
        "--rt-priority",
        type=int,
        metavar="N",
        help="run under SCHED_FIFO at priority N (needs CAP_SYS_NICE or root)",
    )
    rt.add_argument("--cpu", metavar="K[,K...]", help="pin the process to these CPU cores")
    return p


def _parse_cpus(text: str) -> tuple[int, ...]:
    try:
        cpus = tuple(int(k) for k in text.split(","))
    except ValueError:
        raise UsageError(f"--cpu expects core numbers like 2 or 2,3; got {text!r}") from None
    if any(k < 0 for k in cpus):
        raise UsageError(f"--cpu expects non-negative core numbers, got {text!r}")
    return cpus


def _check_args(args: argparse.Namespace) -> None:
    sources = [
        name
        for name, given in (
            ("--port", args.port),
            ("--simulate", args.simulate),
            ("--replay", args.replay),
        )
        if given
    ]
    if not sources:
        raise UsageError(
            "give --port PORT (a serial device or pyserial URL), --simulate, or --replay FILE"
        )
    if len(sources) > 1:
        raise UsageError(f"{' and '.join(sources)} are different inputs: give only one")
    only_with = (
        (
            "--rate",
            args.rate is not None,
            args.simulate,
            "--simulate (a real device sets its own rate, which its Hello announces)",
        ),
        ("--wait", args.wait, args.port, "--port"),
        ("--fast", args.fast, args.replay, "--replay"),
    )
    for option, given, allowed, partner in only_with:
        if given and not allowed:
            raise UsageError(f"{option} applies only with {partner}")
    if args.replay and (args.sensors or args.out_port):
        raise UsageError(
            "--replay plays the subject's coordinates in radians to no device: "
            "--sensors and --out-port do not apply"
        )
    if args.simulate and args.rate is not None and not 1.0 <= args.rate <= 5000.0:
        raise UsageError(f"--rate must lie in 1..5000 Hz, got {args.rate}")
    if args.baud <= 0:
        raise UsageError(f"--baud must be a positive number of bit/s, got {args.baud}")
    if args.duration is not None and not args.duration > 0:
        raise UsageError(f"--duration must be a positive number of seconds, got {args.duration}")
    if not args.range_margin >= 0:
        raise UsageError(f"--range-margin must be >= 0 rad, got {args.range_margin}")
    if args.inference_rate is not None and not args.inference_rate > 0:
        raise UsageError(
            f"--inference-rate must be a positive number of Hz, got {args.inference_rate}"
        )
    if args.max_activation_age is not None and not args.max_activation_age > 0:
        raise UsageError(
            f"--max-activation-age must be a positive number of ms, got {args.max_activation_age}"
        )


def _check_log_path(path: Path | None) -> None:
    """The log's folder must exist and be writable, and the log must not be a folder (for a
    symbolic link: the folder of the file it points to)."""
    if path is None:
        return
    target = path.resolve() if path.is_symlink() else path
    folder = target.parent if str(target.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"--log {path} is a folder: give a file name such as {path / 'run.sto'}")
    if not folder.is_dir():
        raise UsageError(
            f"--log {path}: the folder {folder} does not exist; create it first (mkdir -p {folder})"
        )
    if not os.access(folder, os.W_OK):
        raise UsageError(f"--log {path}: the folder {folder} is not writable")


def _check_port(args: argparse.Namespace) -> None:
    """A device path must be a serial port, or absent only with --wait (the runtime then
    says it is waiting, naming the ports that exist)."""
    from firmware_bridge.link import not_a_serial_port, serial_ports

    port = args.port
    if port is None or "://" in port:
        return
    problem = not_a_serial_port(port)
    if problem:
        raise UsageError(f"--port {problem}")
    if os.path.exists(port):
        return
    found = ", ".join(serial_ports()) or "none found"
    if not args.wait:
        raise UsageError(
            f"--port {port} does not exist (serial ports here: {found}); plug the "
            f"device in, or pass --wait to wait for it"
        )


def _load(args: argparse.Namespace) -> tuple[Any, Any]:
    from calib.sensors import SensorError, SensorMap, load_sensors
    from edge.bundle import BundleError, default_bundle_path, load_bundle

    path = args.bundle if args.bundle is not None else default_bundle_path()
    with bad_input(BundleError, prefix="bundle: "):
        bundle = load_bundle(path)
    inputs = tuple(bundle.manifest.input_coordinates)
    with bad_input(SensorError, prefix="sensors: "):
        sensors = (
            load_sensors(args.sensors) if args.sensors else SensorMap.identity(len(inputs), inputs)
        )
    return bundle, sensors


def _source(args: argparse.Namespace, bundle: Any) -> Any:
    """The sample source the arguments name (not started yet)."""
    from calib.coordinates import opensim_coordinate
    from edge.sources import ReplaySource, SerialSource, SimulatedSource
    from firmware_bridge.link import open_link
    from firmware_bridge.motion_file import MotionFileError

    if args.replay:
        with bad_input(MotionFileError, prefix="--replay: "):
            side = bundle.subject.body.side
            columns = tuple(opensim_coordinate(c, side) for c in bundle.manifest.input_coordinates)
            return ReplaySource(args.replay, columns, fast=args.fast)
    if args.simulate:
        rate = DEFAULT_SIMULATOR_RATE_HZ if args.rate is None else args.rate
        return SimulatedSource(rate, args.duration, open_link, args.baud)
    if "://" in args.port:  # a URL must open now (a device path may appear later)
        with bad_input(LinkError):
            open_link(args.port, args.baud, 0.01).close()
    return SerialSource(args.port, open_link, args.baud, out_port=args.out_port)


def run(args: argparse.Namespace) -> int:
    from edge.realtime import RealtimeError, pin_to_cpus, set_realtime_priority

    log = sys.stderr
    _check_args(args)
    _check_log_path(args.log)
    _check_port(args)
    t_start = time.monotonic()
    bundle, sensors = _load(args)
    source = _source(args, bundle)
    manifest = bundle.manifest
    with bad_input(RealtimeError):
        if args.cpu:
            print(pin_to_cpus(_parse_cpus(args.cpu)), file=log)
        if args.rt_priority is not None:
            print(set_realtime_priority(args.rt_priority), file=log)

    from edge.backends import BackendError, backend_loader
    from edge.hill import HillModel
    from edge.inference import InferenceSettings
    from edge.runtime import EstimatePipeline, Runtime, RuntimeConfig

    load_backend, fallback = backend_loader(bundle, log)
    with bad_input(BackendError, ValueError, prefix="backend: "):
        backend = load_backend(args.backend)
    hill = HillModel(bundle.subject)
    hill.warmup()
    age_ms = args.max_activation_age or manifest.max_activation_age_ms
    inference = InferenceSettings.for_model_rate(
        manifest.sample_rate_hz,
        mode=args.inference,
        threaded=not args.fast,
        max_activation_age_s=None if age_ms is None else age_ms / 1e3,
        worker=args.inference_worker,
        inference_rate_hz=args.inference_rate,
    )
    try:
        pipeline = EstimatePipeline(
            bundle,
            backend,
            hill,
            sensors,
            inference=inference,
            range_margin_rad=args.range_margin,
            fallback=fallback,
            log=log,
            report_muscles=_report_muscles(args.report_muscles, manifest),
        )
    except BackendError as exc:
        raise UsageError(f"backend: {exc}") from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        source.start()
    except (OSError, TimeoutError, EOFError) as exc:
        pipeline.close()
        raise RuntimeError(f"the device simulator did not start: {exc}") from exc
    try:
        _describe(args, bundle, backend.name, pipeline, source, log)
        print(f"ready in  {time.monotonic() - t_start:.1f} s", file=log, flush=True)
        duration = args.duration
        if args.simulate and duration is not None:
            duration += SIMULATOR_SAFETY_S  # the simulator ends the run; this is a safety net
        config = RuntimeConfig(
            log_path=args.log,
            duration_s=duration,
            json_status=args.json_status,
            status_period_s=1.0 if args.json_status or not log.isatty() else 0.25,
            view="bars" if args.view else "line",
        )
        runtime = Runtime(config, source, pipeline, log=log)
        _handle_signals(runtime, source)
        summary = runtime.run()
    finally:
        source.stop()
    if args.simulate:
        summary["simulator"] = source.device_report
    _print_summary(summary, args.json_status)
    return 0


def _report_muscles(text: str | None, manifest: Any) -> tuple[str, ...] | None:
    """--report-muscles: None (the manifest's choice), every muscle, or the names given."""
    if text is None:
        return None
    if text.strip() == "all":
        return tuple(manifest.muscles)
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _handle_signals(runtime: Any, source: Any) -> None:
    """Ctrl-C / SIGTERM: a source that can end its stream in order does (its last samples
    are answered, then the loop ends, at most END_STREAM_GRACE_S later); otherwise, or on
    the second signal, the loop stops at once."""
    ending = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        if not ending.is_set() and source.end_stream():
            ending.set()
            timer = threading.Timer(END_STREAM_GRACE_S, runtime.stop)
            timer.daemon = True
            timer.start()
        else:
            runtime.stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def _describe(
    args: argparse.Namespace, bundle: Any, backend_name: str, pipeline: Any, source: Any, log: Any
) -> None:
    """The startup lines: what runs, on what, and how."""
    from edge.realtime import latency_timer_warning
    from firmware_bridge.link import usb_serial_latency_timer_ms

    if not args.replay:
        warning = latency_timer_warning(source.name, usb_serial_latency_timer_ms(source.name))
        if warning:
            print(warning, file=log)
    manifest = bundle.manifest
    spec = pipeline.spec
    inference = pipeline.inference
    print(
        f"bundle    {bundle.directory} ({manifest.architecture.get('architecture', '?')}, "
        f"window {spec.window} at {spec.rate_hz:g} Hz)",
        file=log,
    )
    print(
        f"subject   {bundle.subject.source or 'the bundle subject.json'} "
        f"({bundle.subject.body.mass:.1f} kg, {bundle.subject.body.height:.2f} m, "
        f"{bundle.subject.body.side} leg)",
        file=log,
    )
    print(
        f"muscles   {len(manifest.muscles)} modelled, {len(pipeline.muscles)} reported: "
        f"{' '.join(pipeline.muscles)}",
        file=log,
    )
    print(
        f"torques   {' '.join(pipeline.coordinates)} (the moments the network balances)", file=log
    )
    neutral = [c for c in pipeline.hill.coordinates if c not in pipeline.measured]
    print(
        f"inputs    the network reads {' '.join(manifest.input_coordinates)}; the device "
        f"measures {' '.join(pipeline.measured)}"
        + (f"; the Hill model holds {' '.join(neutral)} at 0 (neutral)" if neutral else ""),
        file=log,
    )
    print(f"backend   {backend_name}, 1 inference thread, warmed up", file=log)
    inference_hz = inference.network_rate_hz(spec.rate_hz)
    if inference.mode == "per-sample":
        how = "the network runs on every sample's window before the sample is answered"
    elif inference.on_thread:
        where = "on its own thread" if inference.worker == "thread" else "in its own process"
        how = (
            f"the network runs at {inference_hz:g} Hz {where}; each sample is "
            f"answered at once with its newest output extrapolated to the sample"
        )
    else:
        how = (
            f"the network runs inline every {1000 / inference_hz:g} ms of device time; "
            f"the samples between get its newest output extrapolated to them"
        )
    print(
        f"inference {inference.mode}: {how}; answers with activations older than "
        f"{inference.max_activation_age_s * 1000:g} ms carry ACTIVATION_STALE",
        file=log,
    )
    if spec.lookahead:
        print(
            f"lookahead {spec.lookahead} model samples = {spec.delay_s * 1000:g} ms late: each "
            f"estimate describes the instant {spec.delay_s * 1000:g} ms before the sample it "
            f"answers (more context for the backward GRU)",
            file=log,
        )
    else:
        print(
            "lookahead 0: each estimate describes the sample it answers (least context)", file=log
        )
    if args.replay:
        pace = "as fast as possible" if args.fast else "at its own pace"
        print(
            f"input     {source.name}: {len(source.samples)} samples over "
            f"{source.duration_s:.2f} s, {pace}",
            file=log,
        )
    else:
        print(
            f"port      {source.name} at {args.baud} bit/s"
            + (f", estimates to {args.out_port}" if args.out_port else "")
            + (f" (simulator at {source.rate_hz:g} Hz)" if args.simulate else ""),
            file=log,
        )


def _print_summary(summary: dict, json_lines: bool) -> None:
    from edge.status import format_summary

    if json_lines:
        print(json.dumps(summary), flush=True)
        return
    print(format_summary(summary), flush=True)
    device = summary.get("simulator")
    if device and "error" in device:
        print(f"simulator: {device['error']}", flush=True)
    elif device:
        rt = device["round_trip_ms"]
        print(
            f"simulator: sent {device['samples_sent']}, estimates received "
            f"{device['estimates_received']}, lost {device['lost']}, late {device['late']}; "
            f"round trip ms p50 {rt['p50']:.3f} p99 {rt['p99']:.3f} p99.9 {rt['p999']:.3f}",
            flush=True,
        )


def _run(args: argparse.Namespace) -> int:
    """``run`` with the OSErrors that are the user's input (a port that cannot be opened,
    a log that cannot be written) as bad input, and Ctrl-C while starting answered."""
    from edge.sinks import LogError

    try:
        with bad_input(LinkError, LogError):
            return run(args)
    except KeyboardInterrupt:  # Ctrl-C while starting, before the loop's handler is set
        print("edge-run: interrupted while starting", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
