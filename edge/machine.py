"""What machine a benchmark ran on, as far as this process can read it without privileges.

CPU model and cores, the frequency governor and whether the clocks are locked
(minimum frequency = maximum, as ``jetson_clocks`` leaves them), the kernel and
whether it is PREEMPT_RT, the GPU, the versions of the libraries that run the
network, and on a Jetson its model, L4T release and ``nvpmodel`` power mode.
Anything that cannot be read is None (or says why), never a failure.
"""

from __future__ import annotations

import glob
import os
import platform
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = ("numpy", "numba", "onnxruntime", "torch", "torch_tensorrt", "tensorrt", "scipy")
"""Distributions whose versions a description states (None where absent)."""
COMMAND_TIMEOUT_S = 5.0


def read_text(path: str | Path) -> str | None:
    """A small system file's text (device-tree strings lose their NUL), or None."""
    try:
        return Path(path).read_bytes().replace(b"\x00", b"").decode(errors="replace").strip()
    except OSError:
        return None


def run_quietly(argv: list[str]) -> str | None:
    """A command's stdout when it exists and succeeds within a few seconds, else None."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def cpu_model(cpuinfo: str | None, lscpu: str | None) -> str | None:
    """The CPU's name from /proc/cpuinfo ("model name") or, where that has none (ARM),
    from ``lscpu`` ("Model name")."""
    for text, key in ((cpuinfo, "model name"), (lscpu, "Model name")):
        for line in (text or "").splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key and value.strip():
                return value.strip()
    return None


def parse_nvpmodel(text: str | None) -> dict[str, Any] | None:
    """``nvpmodel -q`` output ("NV Power Mode: MAXN" then the mode's number) as
    ``{"name", "id"}``; None when it says neither."""
    if not text:
        return None
    name = re.search(r"NV Power Mode:\s*(\S.*)", text)
    number = re.search(r"^\s*(\d+)\s*$", text, re.MULTILINE)
    if name is None and number is None:
        return None
    return {
        "name": name.group(1).strip() if name else None,
        "id": int(number.group(1)) if number else None,
    }


def clocks_locked(ranges: list[tuple[int, int]]) -> bool | None:
    """Whether every (minimum, maximum) frequency pair is pinned (min == max); None when
    there is none to read."""
    if not ranges:
        return None
    return all(lo == hi for lo, hi in ranges)


def _frequency_ranges(min_glob: str, max_name: str) -> list[tuple[int, int]]:
    out = []
    for min_path in sorted(glob.glob(min_glob)):
        lo = read_text(min_path)
        hi = read_text(Path(min_path).with_name(max_name))
        if lo and hi and lo.isdigit() and hi.isdigit():
            out.append((int(lo), int(hi)))
    return out


def governors() -> list[str]:
    """The distinct CPU frequency governors, sorted (empty where cpufreq is not exposed)."""
    paths = glob.glob("/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor")
    return sorted({g for g in map(read_text, paths) if g})


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def gpu_name() -> str | None:
    """A discrete NVIDIA GPU's name (nvidia-smi, else the driver's /proc entry), or the
    Jetson's integrated GPU; None where there is none."""
    listed = run_quietly(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"])
    if listed:
        return listed.splitlines()[0].strip()
    for info in sorted(glob.glob("/proc/driver/nvidia/gpus/*/information")):
        for line in (read_text(info) or "").splitlines():
            if line.startswith("Model:"):
                return line.partition(":")[2].strip()
    model = read_text("/proc/device-tree/model") or ""
    return f"integrated ({model})" if "jetson" in model.lower() else None


def jetson_description() -> dict[str, Any] | None:
    """Model, L4T release, nvpmodel mode and clock locks on a Jetson; None elsewhere."""
    model = read_text("/proc/device-tree/model")
    if not model or "jetson" not in model.lower():
        return None
    release = read_text("/etc/nv_tegra_release")
    gpu_ranges = _frequency_ranges("/sys/class/devfreq/*gpu*/min_freq", "max_freq")
    return {
        "model": model,
        "l4t": release.splitlines()[0] if release else None,
        "nvpmodel": parse_nvpmodel(run_quietly(["nvpmodel", "-q"])),
        "gpu_clocks_locked": clocks_locked(gpu_ranges),
    }


def describe_machine() -> dict[str, Any]:
    """The machine, as edge-bench reports it (see the module docstring)."""
    cpu_ranges = _frequency_ranges(
        "/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_min_freq", "scaling_max_freq"
    )
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": cpu_model(read_text("/proc/cpuinfo"), run_quietly(["lscpu"])),
        "architecture": platform.machine(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "governor": ", ".join(governors()) or None,
        "cpu_clocks_locked": clocks_locked(cpu_ranges),
        "kernel": platform.release(),
        "preempt_rt": "PREEMPT_RT" in platform.version()
        or read_text("/sys/kernel/realtime") == "1",
        "python": platform.python_version(),
        "libraries": library_versions(),
        "gpu": gpu_name(),
        "jetson": jetson_description(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def machine_line(machine: dict[str, Any]) -> str:
    """The description in one line for the report's head."""
    libs = ", ".join(f"{k} {v}" for k, v in machine["libraries"].items() if v)
    parts = [
        (
            f"{machine['cpu'] or 'unknown CPU'} ({machine['architecture']}), {machine['cores']} "
            f"cores ({machine['cores_usable']} usable)"
        ),
        f"governor {machine['governor'] or 'not readable'}",
        f"CPU clocks locked: {_yes_no(machine['cpu_clocks_locked'])}",
        f"kernel {machine['kernel']}{' PREEMPT_RT' if machine['preempt_rt'] else ''}",
        f"GPU {machine['gpu'] or 'none'}",
    ]
    jetson = machine["jetson"]
    if jetson:
        mode = jetson["nvpmodel"]
        parts.append(
            f"{jetson['model']}, {jetson['l4t'] or 'L4T unknown'}, nvpmodel "
            f"{_mode(mode)}, GPU clocks locked: {_yes_no(jetson['gpu_clocks_locked'])}"
        )
    parts.append(f"Python {machine['python']}, {libs}")
    return "; ".join(parts)


def _yes_no(value: bool | None) -> str:
    return "not readable" if value is None else ("yes" if value else "no")


def _mode(mode: dict[str, Any] | None) -> str:
    if mode is None:
        return "not readable"
    return f"{mode['name'] or '?'} (mode {mode['id'] if mode['id'] is not None else '?'})"
