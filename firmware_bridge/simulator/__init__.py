"""A device that speaks the protocol as a microcontroller would, without hardware.

`DeviceSimulator` plays right-leg joint angles (the built-in normative gait or an
OpenSim .mot file, looped) as `JointSample` frames at a fixed rate on a deadline
schedule, for a set duration or until stopped, with optional encoder
quantisation, noise, dropped samples, timestamp jitter, NaN and garbage
injection; sends Hello and Heartbeat; reads `Estimate` frames back and reports
round-trip latency percentiles, lost and late estimates. Samples are made as
they are played, a short chunk at a time, so a run has no preset end; the
figures are counted as it goes, and the report also carries the latest sent
samples and received estimates (all of them for short runs), so a test can
compare them with offline inference.

Run it in a thread (`DeviceSimulator.start/join`), in a separate process
(`SimulatorProcess`, so it does not share the runtime's GIL) or from the shell
(`bridge-sim`, which creates a pseudo-terminal and prints its path).

- `config`: `SimulatorConfig`, what is played and which faults are injected.
- `plan`: the true angles and each sample's faults, decided ahead of the loop.
- `session`: one run: the device clock, the sending loop, the reader, the counts.
- `report`: `SimulatorReport`, its records and the latency histogram.
- `device`: `DeviceSimulator`, a run blocking or in a thread.
- `process`: `SimulatorProcess`, a run in a process of its own.
- `cli`: the `bridge-sim` command (`python3 -m firmware_bridge.simulator`).
"""

from firmware_bridge.simulator.cli import main
from firmware_bridge.simulator.config import SimulatorConfig, SimulatorConfigError
from firmware_bridge.simulator.device import DeviceSimulator
from firmware_bridge.simulator.plan import source_angles
from firmware_bridge.simulator.process import SimulatorProcess
from firmware_bridge.simulator.report import ReceivedEstimate, SentSample, SimulatorReport

__all__ = [
    "DeviceSimulator",
    "ReceivedEstimate",
    "SentSample",
    "SimulatorConfig",
    "SimulatorConfigError",
    "SimulatorProcess",
    "SimulatorReport",
    "main",
    "source_angles",
]
