"""The train-* front ends: --help imports nothing heavy, the defaults they repeat from
the modules that do the work are those modules' values, and every command keeps the
command-line convention for bad input (one line, exit 2; a failure of the program:
tests/firmware_bridge/test_bridge_command_line.py)."""

import importlib
import subprocess
import sys

import pytest

from train import cli
from train.cli import evaluate as eval_cli
from train.cli import fit as fit_cli

COMMANDS = ("train.cli.fit", "train.cli.so", "train.cli.id", "train.cli.evaluate",
            "train.cli.predict", "train.cli.export")  # fmt: skip
HEAVY = ("torch", "scipy", "matplotlib", "onnxruntime", "numba", "numpy")


@pytest.mark.parametrize("module", COMMANDS)
def test_help_answers_without_importing_heavy_modules(module):
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['{module}', '--help']\n"
        "try:\n"
        f"    runpy.run_module('{module}', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "usage:" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_repeated_defaults_equal_the_working_modules():
    from edge.backends import CPU_PREFERENCE
    from train.data_checks import ANGLE_UNITS
    from train.device import PRECISIONS
    from train.emg import EmgSettings
    from train.evaluate import FORCE_FILES
    from train.fit_config import LEGS, MODES, TrainingConfig
    from train.losses import LOSS_WEIGHTINGS
    from train.model import ARCHITECTURES
    from train.trial import SIDES, TrialConfig

    assert TrialConfig().kinematics_cutoff_hz == cli.KINEMATICS_CUTOFF_HZ
    assert cli.SIDES == SIDES
    assert tuple(ANGLE_UNITS) == cli.ANGLE_UNITS
    assert cli.CPU_BACKENDS == CPU_PREFERENCE
    assert cli.PRECISIONS == PRECISIONS
    assert fit_cli.MODES == MODES and fit_cli.ARCHITECTURES == ARCHITECTURES
    assert tuple(LEGS) == fit_cli.LEGS
    assert fit_cli.LOSS_WEIGHTINGS == LOSS_WEIGHTINGS
    config = TrainingConfig()
    assert (
        config.epochs,
        config.patience,
        config.min_improvement,
    ) == (fit_cli.EPOCHS, fit_cli.PATIENCE, fit_cli.MIN_IMPROVEMENT)
    assert tuple(FORCE_FILES) == eval_cli.FORCE_KINDS
    assert EmgSettings().band_hz == eval_cli.EMG_BAND_HZ
    assert EmgSettings().envelope_hz == eval_cli.EMG_ENVELOPE_HZ


def _trial(tmp_path, *out):
    return ["--ik", str(tmp_path / "walk_ik.mot"), "--loads", str(tmp_path / "walk_grf.xml"),
            "--subject", str(tmp_path / "missing.json"), *out]  # fmt: skip


def _commands(tmp_path):
    """(module, prog, argv that is bad input, the start of the line it gives)."""
    missing_subject = f"cannot read subject file {tmp_path / 'missing.json'}"
    return [
        ("train.cli.fit", "train-fit", _trial(tmp_path, "-o", str(tmp_path / "run")),
         missing_subject),
        ("train.cli.so", "train-so", _trial(tmp_path, "-o", str(tmp_path / "so")),
         missing_subject),
        ("train.cli.id", "train-id", _trial(tmp_path, "-o", str(tmp_path / "id.sto")),
         missing_subject),
        ("train.cli.evaluate", "train-eval",
         ["--predictions", str(tmp_path / "est"), "--labels", str(tmp_path / "so.sto")],
         f"{tmp_path / 'so.sto'}: cannot read the storage file"),
        ("train.cli.predict", "train-predict",
         [str(tmp_path / "run"), "--ik", str(tmp_path / "ik.mot"), "-o", str(tmp_path / "p")],
         f"{tmp_path / 'run'} is neither a training run nor a bundle directory"),
        ("train.cli.export", "train-export", [str(tmp_path / "run"), "-o", str(tmp_path / "b")],
         f"{tmp_path / 'run'} is not a directory"),
    ]  # fmt: skip


@pytest.mark.parametrize("index", range(len(COMMANDS)))
def test_bad_input_is_one_error_line_and_exit_2(tmp_path, capsys, index):
    module, prog, argv, message = _commands(tmp_path)[index]
    main = importlib.import_module(module).main
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [captured.err.strip()], captured.err
    assert captured.err.startswith(f"{prog}: error: {message}"), captured.err


def test_the_trial_arguments_and_output_are_spelled_alike_in_every_command():
    for module in COMMANDS:
        parser = importlib.import_module(module)._parser()
        options = {o for action in parser._actions for o in action.option_strings}
        assert {"-o", "--out", "--debug"} <= options or module == "train.cli.evaluate", module
        assert "--output" not in options, module
    so = importlib.import_module("train.cli.so")._parser()
    args = so.parse_args(["--ik", "a.mot", "--loads", "a.xml", "--subject", "s.json", "-o", "p"])
    assert args.lowpass == cli.KINEMATICS_CUTOFF_HZ and args.side == "r" and args.grf is None
