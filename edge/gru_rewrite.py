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

- ``last_step_gru``: where the network reads the GRU output at one time step
  only (eq. 13: the head takes step W-1-N), the last layer's forward direction
  is run over steps 0..s and its backward direction over steps W-1..s alone,
  both as native GRU ops; every other layer is untouched. Same function, fewer
  operations: with N = 0 the last backward direction runs one step instead of
  W. The ONNX form of a bundle is exported from this program.

- ``opaque_gru``: wraps every GRU in the custom op ``mjca_edge::gru``, which no
  decomposition table knows, so a compiler that decomposes everything it can
  (torch-tensorrt decomposes ``aten.gru``, a composite op) still leaves the GRU
  whole, to PyTorch and cuDNN, and compiles only what surrounds it.

GRU gate order is PyTorch's (r, z, n):
r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z likewise,
n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h
(eqs. 10-11 of the paper are GRUs in this standard form).
"""

from __future__ import annotations

import operator
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


def gru_at_step(
    x: torch.Tensor,
    hx: torch.Tensor,
    params: list[torch.Tensor],
    has_biases: bool,
    num_layers: int,
    dropout: float,
    train: bool,
    bidirectional: bool,
    batch_first: bool,
    step: int,
) -> torch.Tensor:
    """``aten.gru.input(...)[0]`` at time ``step`` only: (B, directions * H).

    Layers below the last run whole (their every step feeds the last layer);
    the last layer's forward direction runs steps 0..step and its backward
    direction steps T-1..step (on the time-reversed tail), each a one-layer
    unidirectional GRU whose final hidden state is the output at ``step``.
    """
    gru = torch.ops.aten.gru.input
    seq = x if batch_first else x.transpose(0, 1)  # (B, T, D)
    directions = 2 if bidirectional else 1
    per_layer = directions * (4 if has_biases else 2)
    if num_layers > 1:
        below = (num_layers - 1) * directions
        seq = gru(
            seq,
            hx[:below],
            params[: (num_layers - 1) * per_layer],
            has_biases,
            num_layers - 1,
            0.0,
            False,
            bidirectional,
            True,
        )[0]
    last = params[(num_layers - 1) * per_layer :]
    per_direction = per_layer // directions
    first_state = (num_layers - 1) * directions

    def final_state(steps: torch.Tensor, direction: int) -> torch.Tensor:
        """One unidirectional layer of the last layer's ``direction`` over ``steps``."""
        state = first_state + direction
        weights = last[direction * per_direction : (direction + 1) * per_direction]
        return gru(steps, hx[state : state + 1], weights, has_biases, 1, 0.0, False, False, True)[
            1
        ][0]

    forward = final_state(seq[:, : step + 1], 0)
    if directions == 1:
        return forward
    return torch.cat([forward, final_state(seq[:, step:].flip(1), 1)], dim=-1)


def last_step_gru(program: ExportedProgram) -> ExportedProgram:
    """The program re-exported with each GRU read at one step computed by ``gru_at_step``.

    Only a GRU whose output sequence is used solely through ``select`` on the
    time axis is rewritten (that is how eq. 13 reads it); any other GRU is left
    as it is. Raises ``ValueError`` when the program holds no such GRU.
    """
    module = program.module()
    rewritten = 0
    for node in _calls_of(module.graph, torch.ops.aten.gru.input):
        selects = _time_selects(node)
        if selects is None:
            continue
        batch_first = node.args[8]
        sequence = node.args[0]
        assert isinstance(sequence, torch.fx.Node)  # aten.gru's input is a traced tensor
        steps = sequence.meta["val"].shape[1 if batch_first else 0]
        for select in selects:
            step = select.args[2] % steps
            with module.graph.inserting_before(select):
                replacement = module.graph.call_function(gru_at_step, (*node.args, step))
            select.replace_all_uses_with(replacement)
            module.graph.erase_node(select)
        # FX's dead-code pass keeps aten.gru (dropout makes it count as impure): erase by hand.
        for user in list(node.users):
            module.graph.erase_node(user)
        module.graph.erase_node(node)
        rewritten += 1
    if not rewritten:
        raise ValueError("no GRU in this program is read at a single time step")
    module.graph.eliminate_dead_code()
    return _reexport(module, program)


def _time_selects(node: torch.fx.Node) -> list[torch.fx.Node] | None:
    """The ``select`` nodes reading ``node``'s output sequence on its time axis, if only those."""
    time_axis = 1 if node.args[8] else 0
    selects = []
    for user in node.users:
        if user.target is operator.getitem and user.args[1] == 1:
            if user.users:
                return None
            continue
        if user.target is not operator.getitem or user.args[1] != 0:
            return None
        for reader in user.users:
            if reader.target != torch.ops.aten.select.int or reader.args[1] != time_axis:
                return None
            selects.append(reader)
    return selects or None


@torch.library.custom_op("mjca_edge::gru", mutates_args=())
def opaque_gru_op(
    x: torch.Tensor,
    hx: torch.Tensor,
    params: list[torch.Tensor],
    has_biases: bool,
    num_layers: int,
    bidirectional: bool,
    batch_first: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``aten.gru.input`` in inference (no dropout), opaque to decompositions."""
    out, h = torch.ops.aten.gru.input(
        x, hx, params, has_biases, num_layers, 0.0, False, bidirectional, batch_first
    )
    return out, h


@opaque_gru_op.register_fake
def _opaque_gru_shapes(x, hx, params, has_biases, num_layers, bidirectional, batch_first):
    hidden = params[1].shape[1]  # w_hh of layer 0: (3H, H)
    directions = 2 if bidirectional else 1
    return x.new_empty((*x.shape[:-1], directions * hidden)), hx.new_empty(hx.shape)


OPAQUE_GRU = torch.ops.mjca_edge.gru.default
"""The op a compiler should leave to PyTorch (torch-tensorrt ``torch_executed_ops``)."""


def opaque_gru(program: ExportedProgram) -> ExportedProgram:
    """The program re-exported with every ``aten.gru.input`` replaced by ``OPAQUE_GRU``."""
    module = program.module()
    for node in _calls_of(module.graph, torch.ops.aten.gru.input):
        x, hx, params, has_biases, num_layers, _, _, bidirectional, batch_first = node.args
        node.target = OPAQUE_GRU
        node.args = (x, hx, params, has_biases, num_layers, bidirectional, batch_first)
    return _reexport(module, program)


def count_gru_nodes(program: ExportedProgram, op: object = None) -> int:
    """How many calls of ``op`` (default ``aten.gru.input``) the program's graph holds."""
    return len(_calls_of(program.graph, torch.ops.aten.gru.input if op is None else op))


def decompose_gru(program: ExportedProgram) -> ExportedProgram:
    """The program with PyTorch's default decompositions (GRU unrolled per step)."""
    return program.run_decompositions()


def explicit_gru_cells(program: ExportedProgram) -> ExportedProgram:
    """The program re-exported with every GRU replaced by ``explicit_gru``.

    The program's sample input shape and device are kept; export runs with cuDNN
    disabled (on torch <= 2.8 exporting a GRU on CUDA with cuDNN fails).
    """
    module = program.module()
    for node in _calls_of(module.graph, torch.ops.aten.gru.input):
        node.target = explicit_gru
    return _reexport(module, program)


def _calls_of(graph: torch.fx.Graph, op: object) -> list[torch.fx.Node]:
    """The graph's ``call_function`` nodes of ``op``, listed first so they may be edited."""
    return [node for node in graph.nodes if node.op == "call_function" and node.target == op]


def _reexport(module: torch.fx.GraphModule, program: ExportedProgram) -> ExportedProgram:
    """``module`` (an edited ``program.module()``) exported again on ``program``'s sample
    input shapes and device, with cuDNN disabled (on torch <= 2.8 exporting a GRU on CUDA
    with cuDNN fails)."""
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


__all__ = [
    "OPAQUE_GRU",
    "count_gru_nodes",
    "decompose_gru",
    "explicit_gru",
    "explicit_gru_cells",
    "gru_at_step",
    "last_step_gru",
    "opaque_gru",
    "opaque_gru_op",
]
