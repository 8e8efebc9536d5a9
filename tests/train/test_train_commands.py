"""The train-* front ends: --help imports nothing heavy, and the defaults they repeat from
the modules that do the work are those modules' values."""

import subprocess
import sys

import pytest

from train import cli
from train.cli import evaluate as eval_cli
from train.cli import fit as fit_cli

COMMANDS = ("train.cli.fit", "train.cli.so", "train.cli.evaluate", "train.cli.predict",
            "train.cli.export")  # fmt: skip
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
    from train.trial import TrialConfig

    assert TrialConfig().kinematics_cutoff_hz == cli.KINEMATICS_CUTOFF_HZ
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
