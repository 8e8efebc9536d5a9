"""Where the train-* commands compute: the device, training's precision, the process group.

``resolve_device("auto" | "cpu" | "cuda" | "cuda:N")`` is the torch device a command
runs on: "auto" is CUDA where torch sees it, else the CPU; "cuda" without a CUDA device
is refused in one line naming what torch sees. Under torchrun every process takes the
GPU of its LOCAL_RANK.

Precision (``PRECISIONS``): the network's forward pass runs under ``torch.autocast``
in bf16 or fp16 where asked (``autocast``), and the physics-informed loss always runs in
fp32 on the output cast back to fp32 (``train.training_loop.batch_losses``). Why: the required
torques reach 100-200 N m and the loss balances them to a few N m (about 1.5-9 % of
the torque is left to the effort trade-off, ``train.losses``); bf16 keeps 8 bits of
mantissa (0.4 % relative), so tau_h = R^T F summed over 43 muscles would carry rounding
of the order of the residual it is meant to measure, and fp16 overflows at 65504 where
w_d * ||tau_h - tau_req||^2 in (N m)^2 easily lies. The Hill factors and torques are
precomputed per window in fp32 (``train.windows``) and stay so. fp16 also scales the
loss (``grad_scaler``) so that small gradients do not flush to zero; bf16 has fp32's
exponent range and needs no scaling.

The process group (``process_group_backend``): NCCL between GPUs, gloo between CPUs.
"""

from __future__ import annotations

import contextlib
import re

import torch

from train.options import PRECISIONS

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class DeviceError(ValueError):
    """A device or precision that this machine or this torch cannot give; says what it sees."""


def cuda_seen() -> str:
    """What torch sees of CUDA, in words (for errors and the first line of a run)."""
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build and sees no CUDA device"
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        return (
            f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA device "
            "(no driver, or CUDA_VISIBLE_DEVICES hides them)"
        )
    return f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees {count} CUDA device(s)"


def resolve_device(
    requested: str | torch.device, local_rank: int = 0, world_size: int = 1
) -> torch.device:
    """The torch device ``requested`` names on this machine; raises ``DeviceError``.

    "auto": cuda:``local_rank`` where torch sees CUDA, else cpu. "cuda": cuda:``local_rank``
    (the process's GPU under torchrun, else cuda:0). "cuda:N": that GPU, one process only.
    A torch.device is checked and kept (one of another type, e.g. "meta" in tests, as it is).
    """
    if isinstance(requested, torch.device):
        if requested.type == "cuda":
            return _cuda(str(requested), requested.index or 0, local_rank)
        return requested
    text = requested.strip().lower()
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match is None:
        raise DeviceError(f"--device {requested!r}: give {DEVICE_CHOICES}")
    if match.group(1) is None:
        return _cuda(requested, local_rank, local_rank)
    if world_size > 1:
        raise DeviceError(
            f"--device {requested}: under torchrun each process takes cuda:LOCAL_RANK; "
            "give --device cuda (or auto)"
        )
    return _cuda(requested, int(match.group(1)), local_rank)


def _cuda(requested: str, index: int, local_rank: int) -> torch.device:
    if not torch.cuda.is_available():
        raise DeviceError(f"--device {requested}: {cuda_seen()}; use --device cpu (or auto)")
    count = torch.cuda.device_count()
    if index >= count:
        raise DeviceError(
            f"--device {requested}: process {local_rank} of this node needs cuda:{index} but "
            f"torch sees {count} CUDA device(s) (cuda:0-{count - 1}); choose one of them or "
            "start at most that many processes per node"
        )
    return torch.device("cuda", index)


def describe_device(device: torch.device) -> str:
    """``device`` for a reader: its name and memory, or what torch sees of CUDA."""
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        return (
            f"{device} ({properties.name}, {properties.total_memory / 2**30:.0f} GiB; "
            f"torch {torch.__version__}, CUDA {torch.version.cuda})"
        )
    if device.type == "cpu":
        return f"cpu ({cuda_seen()})"
    return str(device)


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision ``device`` cannot train in, in one line."""
    if precision not in PRECISIONS:
        raise DeviceError(f"--precision {precision!r}: give {', '.join(PRECISIONS)}")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise DeviceError(
            f"--precision bf16: {torch.cuda.get_device_name(device)} has no bf16 arithmetic "
            "(it needs compute capability 8.0 or newer); use --precision fp16 or fp32"
        )


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context the network's forward pass runs in: autocast to bf16/fp16, or nothing."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[precision])


@contextlib.contextmanager
def no_tf32(device: torch.device):
    """cuBLAS and cuDNN in full fp32 on a CUDA ``device`` while inside, restored after.

    torch lets cuDNN (the GRU) use TF32, 10 bits of mantissa, on Ampere and newer GPUs by
    default; here fp32 means fp32, so that a GPU run follows the CPU run of the same seed.
    Lower precision is what --precision bf16/fp16 asks for.
    """
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


FP16_INITIAL_LOSS_SCALE = 1.0
"""fp16's first loss scale. The physics loss is in (N m)^2, of order 1e4-1e5 at the
start, and its gradient at the network's output of order 1e3 per activation: with
torch's default first scale, 2^16, fp16 overflows and skips steps, and a small network
on a synthetic walk (tests/train/test_device.py) was still at its first loss after three
epochs (82979 -> 80991; fp32 81147 -> 30753; first scale 1: 81043 -> 32997; 16 and 256
lay between). The scaler still doubles the scale after 2000 steps without an overflow."""


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling, on for fp16 only (a disabled scaler passes the loss and step through)."""
    if precision != "fp16":
        return torch.amp.GradScaler("cpu", enabled=False)
    return torch.amp.GradScaler(device.type, init_scale=FP16_INITIAL_LOSS_SCALE)


def process_group_backend(device: torch.device) -> str:
    """The torch.distributed backend for processes that train on ``device``."""
    return "nccl" if device.type == "cuda" else "gloo"


def precision_line(precision: str) -> str:
    if precision == "fp32":
        return "precision fp32"
    return f"precision {precision} (the network under autocast, the physics loss in fp32)"
