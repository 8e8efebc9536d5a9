"""firmware_bridge: the wire between the device firmware and the runtime.

- `protocol`: the one table of byte layouts, constants and flags (PROTOCOL.md, C header).
- `codec`: message dataclasses, `encode`, `StreamDecoder`.
- `timestamps`: `TimestampUnwrapper` for the device's 32-bit µs clock.
- `link`: `open_link` (pyserial URLs and paths), `PseudoTerminal`, USB latency timer.
- `simulator`: `DeviceSimulator`, `SimulatorProcess`, the `bridge-sim` command.
- `normative_gait`: the built-in gait cycle (named by calib's coordinates); `motion_file`:
  angles from OpenSim .mot files.
- `command_line`: the convention every console script follows (exit codes, `--debug`).
- `c/`: the C codec a firmware includes.
"""
