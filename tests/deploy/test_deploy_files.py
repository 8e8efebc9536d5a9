"""deploy/: the systemd unit and the udev rule are what the guide says, and the system's
own tools accept them where they are installed."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess

import pytest
from helpers.paths import REPO

DEPLOY = REPO / "deploy"
UNIT = DEPLOY / "mjca-edge.service"
RULES = DEPLOY / "99-mjca-edge.rules"


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(UNIT)
    return parser


def test_the_unit_runs_edge_run_as_the_guide_says():
    service = _unit()["Service"]
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # edge-run's bad-input exit code
    assert "CAP_SYS_NICE" in service["AmbientCapabilities"]
    assert service["SupplementaryGroups"] == "dialout"
    command = shlex.split(service["ExecStart"])
    assert command[:2] == ["/bin/sh", "-c"]
    # as systemd and then sh pass it: "$$" and "%%" unescaped, the start time substituted
    script = command[2].replace("$$", "$").replace("%%", "%")
    assert "$(date +%Y%m%d-%H%M%S)" in script
    edge_run = shlex.split(script.replace("$(date +%Y%m%d-%H%M%S)", "20261130-230000"))
    assert edge_run[0] == "exec" and edge_run[1].endswith("/edge-run")
    from edge.cli import build_parser

    args = build_parser().parse_args(edge_run[2:])  # every option exists in edge-run
    assert args.port == "/dev/mjca-device" and args.wait and args.rt_priority == 80
    assert str(args.log) == "/var/log/mjca-edge/estimates-20261130-230000.sto"
    assert _unit()["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_accepts_the_unit():
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here")
    done = subprocess.run(
        ["systemd-analyze", "verify", str(UNIT)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if UNIT.name in line]
    assert done.returncode == 0 and not complaints, done.stdout + done.stderr


def test_the_udev_rules_name_the_devices_the_unit_and_guide_use():
    rules = [
        line
        for line in RULES.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert any('SYMLINK+="mjca-device"' in r and 'GROUP="dialout"' in r for r in rules)
    assert any('KERNEL=="ttyTHS' in r and 'SYMLINK+="mjca-uart"' in r for r in rules)
    assert any('ATTR{latency_timer}="1"' in r for r in rules)
    for rule in rules:  # every key is KEY==, KEY!=, KEY=, KEY+= with a quoted value
        for pair in rule.split(", "):
            key, op, value = pair.partition("==" if "==" in pair else "+=" if "+=" in pair else "=")
            assert key and op and value.startswith('"') and value.endswith('"'), pair
