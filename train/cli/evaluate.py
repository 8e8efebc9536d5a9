"""``train-eval``: score estimates against reference labels and EMG (``train.evaluate``)."""

from __future__ import annotations

import argparse

from firmware_bridge.command_line import bad_input, command_parser, run_command
from train.cli import add_ik_argument, add_inference_arguments, add_leg_arguments
from train.options import EMG_BAND_HZ, EMG_ENVELOPE_HZ, FORCE_KINDS

EMG_LAG_MS = 100.0
"""The lag search's half-width when --emg-lag is given without a value."""


def _parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "train-eval",
        description=(
            "Score muscle activation and force estimates against reference labels "
            "(e.g. OpenSim static optimisation): R² (eq. 33), Pearson r and NRMSE (eq. 34) "
            "per muscle, on the reference's sample times within [--start, --end]; and "
            "against EMG envelopes (--emg): Pearson r per muscle. Estimates come from a "
            "trained network (RUN: a training run or a bundle, with --ik) or from existing "
            "files (--predictions PREFIX, e.g. train-so or train-predict output). Prints "
            "tables; --json and --plot save the scores and a figure."
        ),
        epilog=(
            "R² is defined only where the reference's range reaches 5 %% of the muscle's "
            "full scale (activation 1; force its maximum isometric force), elsewhere it "
            "shows '-' (null in JSON) and NRMSE and r judge the muscle; NRMSE divides by "
            "max(range, 5 %% of full scale). Means say over how many muscles they run. "
            "Held-out scores: train with train-fit --legs right (or on other trials) and "
            "score here with --side l (or the other trial's files)."
        ),
    )
    parser.add_argument("run", metavar="RUN", nargs="?", help="training run or bundle directory")
    parser.add_argument(
        "--predictions",
        metavar="PREFIX",
        help="score PREFIX_activation.sto and PREFIX_active_force.sto instead of running a network",
    )
    add_ik_argument(parser, required=False, note=", with RUN")
    add_leg_arguments(parser)
    add_inference_arguments(parser)
    parser.add_argument("--labels", help="reference activations (.sto)")
    parser.add_argument("--forces", help="reference muscle forces (.sto), with --labels")
    parser.add_argument(
        "--force-kind",
        choices=FORCE_KINDS,
        default="active",
        help="which estimated force to score: active (as OpenSim SO reports) or total (eq. 18)",
    )
    parser.add_argument(
        "--subject",
        help="subject.json whose maximum isometric forces are the forces' full scale "
        "(default: the run's or bundle's; with --predictions, else the reference's peak)",
    )
    parser.add_argument(
        "--muscles",
        metavar="A,B,...",
        help="score (and plot) only these muscles, comma-separated, or 'all' (default: "
        "score every estimated muscle, plot the paper's ten among them)",
    )
    parser.add_argument("--start", type=float, metavar="S", help="start of the scored span (s)")
    parser.add_argument("--end", type=float, metavar="S", help="end of the scored span (s)")
    emg = parser.add_argument_group("EMG")
    emg.add_argument(
        "--emg",
        metavar="FILE",
        help="EMG envelopes (.sto/.mot, or .csv with a time column in s then one column per "
        "channel); with --emg-raw, raw EMG",
    )
    emg.add_argument(
        "--emg-raw",
        action="store_true",
        help="the EMG is raw: band-pass (--emg-band), rectify, low-pass (--emg-envelope)",
    )
    emg.add_argument(
        "--emg-band",
        type=float,
        nargs=2,
        default=EMG_BAND_HZ,
        metavar=("LO", "HI"),
        help="raw EMG band-pass in Hz, 4th-order Butterworth, zero phase (default 20 450)",
    )
    emg.add_argument(
        "--emg-envelope",
        type=float,
        default=EMG_ENVELOPE_HZ,
        metavar="HZ",
        help="raw EMG envelope low-pass, 2nd-order Butterworth, zero phase (default 6 Hz)",
    )
    emg.add_argument(
        "--emg-map",
        metavar="MAP.json",
        help='channel -> muscle, {"channel": "muscle name" or null} (default: by channel '
        "name: side and muscle name or common abbreviation, e.g. R_TA -> tib_ant_r)",
    )
    emg.add_argument(
        "--emg-lag",
        type=float,
        nargs="?",
        const=EMG_LAG_MS,
        default=0.0,
        metavar="MS",
        help="search the lag of best r within +-MS (default without MS: 100 ms); "
        "the lag is reported, + = the estimate follows the EMG",
    )
    parser.add_argument("--json", metavar="FILE", help="write the scores as JSON")
    parser.add_argument(
        "--plot",
        metavar="FILE",
        help="write a Fig. 4-style figure (.png: one file per page, FILE, FILE_2, ...; .pdf: "
        "one file)",
    )
    parser.add_argument(
        "--cycle",
        type=float,
        nargs=2,
        metavar=("HS1", "HS2"),
        help="two heel strikes (s): plot against %% of that gait cycle",
    )
    return parser


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if (args.run is None) == (args.predictions is None):
        parser.error("give either RUN (with --ik) or --predictions PREFIX")
    if args.run is not None and args.ik is None:
        parser.error("RUN needs --ik")
    if args.labels is None and args.emg is None:
        parser.error("give --labels (reference activations), --emg, or both")
    if args.forces is not None and args.labels is None:
        parser.error("--forces needs --labels")
    from train.emg import format_emg_table
    from train.evaluate import EVALUATION_ERRORS, evaluate, format_table, write_outputs

    with bad_input(*EVALUATION_ERRORS):
        evaluation = evaluate(args)
        written = write_outputs(evaluation, args)
    print(evaluation.source)
    for note in evaluation.notes:
        print(note)
    if evaluation.comparisons:
        print(format_table(evaluation.comparisons))
    if evaluation.emg is not None:
        print(format_emg_table(evaluation.emg))
    for path in written:
        print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    return run_command(parser, lambda args: _run(parser, args), argv)


if __name__ == "__main__":
    raise SystemExit(main())
