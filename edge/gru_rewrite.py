"""Rewrites of the GRU inside an ExportedProgram, for compilers without a GRU.

torch-tensorrt has no converter for ``aten.gru``. Two ways around it, each
checkable on a CPU because both are plain ``torch.export`` programs:

- ``decompose_gru``: PyTorch's own decomposition (``run_decompositions``) turns
  the GRU into a per-time-step sequence of linear/sigmoid/tanh ops; with a fixed
  window the recurrence is fully unrolled, including one input projection per
  step.
- ``explicit_gru_cells``: replaces every ``aten.gru.input`` with an explicit
  GRU-cell loop that first projects the whole window in ONE matrix product per
  layer and direction (the input projection does not depend on the recurrence)
  and then runs only the hidden-state recurrence step by step. Fewer, larger
  kernels: the variant that should suit a GPU best, measured on the device.

GRU gate order is PyTorch's (r, z, n):
r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z likewise,
n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h
(eqs. 10-11 of the paper are GRUs in this standard form).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from torch.export import ExportedProgram


def explicit_gru(
    x: torch.Tensor,
    hx: torch.Tensor,
    params: list[torch.Tensor],
    has_biases: bool,
    num_layers: int,
    dropout: float,
    train: bool,
    bidirectional: bool,
    batch_first: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same signature and result as ``torch.ops.aten.gru.input`` in inference.

    ``dropout`` and ``train`` are accepted for the signature and ignored: the
    program is an inference program.
    """
    seq = x if batch_first else x.transpose(0, 1)  # (B, T, D)
    steps = seq.shape[1]
    directions = 2 if bidirectional else 1
    per_direction = 4 if has_biases else 2
    finals = []
    for layer in range(num_layers):
        outputs = []
        for direction in range(directions):
            index = (layer * directions + direction) * per_direction
            w_ih, w_hh = params[index], params[index + 1]
            b_ih = params[index + 2] if has_biases else None
            b_hh = params[index + 3] if has_biases else None
            gates_x = F.linear(seq, w_ih, b_ih)  # (B, T, 3H): all steps in one product
            x_r, x_z, x_n = gates_x.chunk(3, dim=-1)
            h = hx[layer * directions + direction]
            order = range(steps - 1, -1, -1) if direction == 1 else range(steps)
            states: list[torch.Tensor] = [h] * steps
            for t in order:
                h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=-1)
                r = torch.sigmoid(x_r[:, t] + h_r)
                z = torch.sigmoid(x_z[:, t] + h_z)
                n = torch.tanh(x_n[:, t] + r * h_n)
                h = (1 - z) * n + z * h
                states[t] = h
            outputs.append(torch.stack(states, dim=1))
            finals.append(h)
        seq = torch.cat(outputs, dim=-1) if directions == 2 else outputs[0]
    out = seq if batch_first else seq.transpose(0, 1)
    return out, torch.stack(finals, dim=0)


def count_gru_nodes(program: ExportedProgram) -> int:
    """How many ``aten.gru.input`` calls the program's graph holds."""
    return sum(
        1
        for node in program.graph.nodes
        if node.op == "call_function" and node.target == torch.ops.aten.gru.input
    )


def decompose_gru(program: ExportedProgram) -> ExportedProgram:
    """The program with PyTorch's default decompositions (GRU unrolled per step)."""
    return program.run_decompositions()


def explicit_gru_cells(program: ExportedProgram) -> ExportedProgram:
    """The program re-exported with every GRU replaced by ``explicit_gru``.

    The program's sample input shape and device are kept; export runs with cuDNN
    disabled (on torch <= 2.8 exporting a GRU on CUDA with cuDNN fails).
    """
    module = program.module()
    for node in module.graph.nodes:
        if node.op == "call_function" and node.target == torch.ops.aten.gru.input:
            node.target = explicit_gru
    module.recompile()
    example = tuple(_example_inputs(program))
    with torch.no_grad(), torch.backends.cudnn.flags(enabled=False):
        return torch.export.export(module, example)


def _example_inputs(program: ExportedProgram) -> list[torch.Tensor]:
    inputs = []
    for spec in program.graph_signature.input_specs:
        if spec.kind.name != "USER_INPUT":
            continue
        node = next(
            n for n in program.graph.nodes if n.op == "placeholder" and n.name == spec.arg.name
        )
        meta = node.meta["val"]
        inputs.append(torch.zeros(tuple(meta.shape), dtype=meta.dtype, device=meta.device))
    return inputs


__all__ = ["count_gru_nodes", "decompose_gru", "explicit_gru", "explicit_gru_cells"]
