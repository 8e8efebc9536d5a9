"""The command-line convention (firmware_bridge.command_line) on its own, and on every
console script: a failure of the program is exit 1 and one line, its traceback only with
--debug. Each script's bad-input lines are tested with the script."""

from __future__ import annotations

import importlib

import pytest

from firmware_bridge.command_line import (
    PATH_ERRORS,
    UsageError,
    bad_input,
    command_parser,
    one_line,
    run_command,
)


class PlantedBug(Exception):
    """A failure of the program itself, planted for the test."""


def _toy(work):
    parser = command_parser("toy")
    parser.add_argument("--count", type=int, default=1)
    return lambda argv: run_command(parser, work, argv)


def test_bad_input_is_one_line_and_exit_2(capsys):
    def work(args):
        with bad_input(ValueError):
            raise ValueError("count 3 is more\n   than the file holds")

    assert _toy(work)([]) == 2
    assert capsys.readouterr().err == "toy: error: count 3 is more than the file holds\n"

    def refuse(args):
        raise UsageError(f"--count must be positive, got {args.count}")

    assert _toy(refuse)(["--count", "-1", "--debug"]) == 2  # --debug: still one line
    assert capsys.readouterr().err == "toy: error: --count must be positive, got -1\n"


def test_argparse_errors_keep_argparse_form(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _toy(lambda args: 0)(["--count", "many"])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("usage: toy") and "[--debug]" in lines[0]
    assert lines[-1] == "toy: error: argument --count: invalid int value: 'many'"


def test_a_path_error_names_the_file_and_other_os_errors_are_failures(tmp_path, capsys):
    missing = tmp_path / "subject.json"

    def read(args):
        with bad_input(*PATH_ERRORS):
            missing.read_text()

    assert _toy(read)([]) == 2
    assert capsys.readouterr().err == f"toy: error: {missing}: No such file or directory\n"
    assert one_line(OSError("a link's own message")) == "a link's own message"

    def disk_full(args):
        with bad_input(*PATH_ERRORS):
            raise OSError(28, "No space left on device")

    assert _toy(disk_full)([]) == 1
    assert capsys.readouterr().err == (
        "toy: internal error: OSError: [Errno 28] No space left on device "
        "(--debug prints the traceback)\n"
    )


def test_exit_codes_of_the_work_and_ctrl_c_pass_through(capsys):
    assert _toy(lambda args: None)([]) == 0
    assert _toy(lambda args: 130)([]) == 130

    def interrupted(args):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _toy(interrupted)([])
    assert capsys.readouterr().err == ""


def _trial(tmp_path):
    return ["--ik", str(tmp_path / "ik.mot"), "--loads", str(tmp_path / "grf.xml"),
            "--subject", str(tmp_path / "subject.json")]  # fmt: skip


SCRIPTS = {
    # prog: (main's module, arguments, (module, function) a bug is planted in)
    "calib-subject": ("calib.cli", ["--height", "1.8", "--mass", "70", "-o", "{tmp}/s.json"],
                      ("calib.cli", "scale_subject")),
    "train-fit": ("train.cli.fit", ["{trial}", "-o", "{tmp}/run"], ("train.fit", "run_cli")),
    "train-so": ("train.cli.so", ["{trial}", "-o", "{tmp}/so"], ("calib.subject", "load_subject")),
    "train-id": ("train.cli.id", ["{trial}", "-o", "{tmp}/id.sto"],
                 ("calib.subject", "load_subject")),
    "train-eval": ("train.cli.evaluate", ["--predictions", "{tmp}/est", "--labels", "{tmp}/so.sto"],
                   ("train.evaluate", "evaluate")),
    "train-predict": ("train.cli.predict", ["{tmp}/run", "--ik", "{tmp}/ik.mot", "-o", "{tmp}/p"],
                      ("train.predict", "load_predictor")),
    "train-export": ("train.cli.export", ["{tmp}/run", "-o", "{tmp}/bundle"],
                     ("train.export", "export_bundle")),
    "edge-run": ("edge.cli", ["--simulate"], ("edge.cli", "_load")),
    "edge-bench": ("edge.bench.cli", ["--backends", "onnxruntime"], ("edge.bench.cli", "_prepare")),
    "bridge-sim": ("firmware_bridge.simulator.cli", ["--duration", "1"],
                   ("firmware_bridge.simulator.cli", "DeviceSimulator")),
}  # fmt: skip


@pytest.mark.parametrize("prog", SCRIPTS)
def test_a_program_failure_exits_1_with_its_traceback_only_under_debug(
    prog, tmp_path, capsys, monkeypatch
):
    module, template, (working_module, function) = SCRIPTS[prog]
    argv = []
    for arg in template:
        argv.extend(_trial(tmp_path) if arg == "{trial}" else [arg.format(tmp=tmp_path)])

    def planted_bug(*args, **kwargs):
        raise PlantedBug("a bug in the program")

    monkeypatch.setattr(importlib.import_module(working_module), function, planted_bug)
    main = importlib.import_module(module).main
    line = f"{prog}: internal error: PlantedBug: a bug in the program"
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"{line} (--debug prints the traceback)"]
    assert main([*argv, "--debug"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "Traceback (most recent call last):"
    assert any(text.endswith(", in planted_bug") for text in err)
    assert err[-1] == line
