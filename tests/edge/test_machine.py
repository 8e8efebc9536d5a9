"""edge.machine: what it reads from this machine and how it parses what a Jetson prints."""

from __future__ import annotations

import os

from edge.machine import clocks_locked, cpu_model, describe_machine, machine_line, parse_nvpmodel

LSCPU_ARM = """Architecture:                    aarch64
CPU(s):                          8
Vendor ID:                       ARM
Model name:                      Cortex-A78AE
"""


def test_cpu_model_from_cpuinfo_else_lscpu():
    assert (
        cpu_model("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) CPU\n", None)
        == "Intel(R) Xeon(R) CPU"
    )
    arm_cpuinfo = "processor\t: 0\nBogoMIPS\t: 62.50\nCPU part\t: 0xd42\n"
    assert cpu_model(arm_cpuinfo, LSCPU_ARM) == "Cortex-A78AE"
    assert cpu_model(None, None) is None


def test_nvpmodel_query_output():
    assert parse_nvpmodel("NV Power Mode: MAXN\n0\n") == {"name": "MAXN", "id": 0}
    assert parse_nvpmodel("NV Power Mode: 15W\n2") == {"name": "15W", "id": 2}
    assert parse_nvpmodel("") is None
    assert parse_nvpmodel("nvpmodel: command failed") is None


def test_clocks_locked_when_every_minimum_is_the_maximum():
    assert clocks_locked([(2201600, 2201600), (2201600, 2201600)]) is True
    assert clocks_locked([(2201600, 2201600), (115200, 2201600)]) is False
    assert clocks_locked([]) is None


def test_this_machine_is_described():
    machine = describe_machine()
    assert machine["cores"] == os.cpu_count()
    assert machine["libraries"]["numpy"] is not None
    import numpy

    assert machine["libraries"]["numpy"] == numpy.__version__
    line = machine_line(machine)
    assert f"{machine['cores']} cores" in line and f"numpy {machine['libraries']['numpy']}" in line
