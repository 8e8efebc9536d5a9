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


def test_the_parsers_and_the_working_modules_share_one_definition():
    """Each choice set is one object from train.options (or edge.backend_names): a second
    literal in a parser or a working module, even an equal one, fails ``is``."""
    from edge.backends import CPU_PREFERENCE
    from train import options
    from train.data_checks import ANGLE_UNITS
    from train.device import PRECISIONS
    from train.emg import EmgSettings
    from train.evaluate import FORCE_FILES
    from train.fit_config import LEGS, LOSS_WEIGHTINGS, MODES, TrainingConfig
    from train.model import ARCHITECTURES
    from train.trial import SIDES, TrialConfig

    assert cli.SIDES is SIDES is options.SIDES
    assert cli.CPU_BACKENDS is CPU_PREFERENCE
    assert fit_cli.PRECISIONS is PRECISIONS is options.PRECISIONS
    assert cli.ANGLE_UNITS is options.ANGLE_UNITS and tuple(ANGLE_UNITS) == options.ANGLE_UNITS
    assert fit_cli.MODES is MODES is options.MODES
    assert fit_cli.ARCHITECTURES is ARCHITECTURES is options.ARCHITECTURES
    assert fit_cli.LOSS_WEIGHTINGS is LOSS_WEIGHTINGS is options.LOSS_WEIGHTINGS
    assert fit_cli.LEGS is options.LEG_CHOICES and tuple(LEGS) == options.LEG_CHOICES
    assert eval_cli.FORCE_KINDS is options.FORCE_KINDS and tuple(FORCE_FILES) == options.FORCE_KINDS
    assert TrialConfig().kinematics_cutoff_hz == options.KINEMATICS_CUTOFF_HZ
    config = TrainingConfig()
    assert (config.epochs, config.patience, config.min_improvement) == (
        options.EPOCHS,
        options.PATIENCE,
        options.MIN_IMPROVEMENT,
    )
    assert EmgSettings().band_hz == options.EMG_BAND_HZ
    assert EmgSettings().envelope_hz == options.EMG_ENVELOPE_HZ


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
