"""MJCA-BiGRU (paper Section II-B) and the two ablation networks of Section III-D2.

Read top to bottom, this file follows the paper's pipeline:
joint embedding (eqs. 1-2) -> multi-joint cross-attention (eqs. 3-8) ->
joint integration (eq. 9) -> stacked BiGRU (eqs. 10-12) -> one time step
(eq. 13) -> prediction head (eq. 14).

Shapes: B batch, W window (time steps, the paper's S), Nj input coordinates
("joints": the paper's three sagittal angles by default, five with the hip's
adduction and rotation, ``ModelConfig.input_coordinates``), F = 3 features per
joint (angle rad, velocity rad/s, acceleration rad/s^2), M muscles. The input
``x`` is (B, W, 3 Nj) raw SI features in ``ModelConfig.input_features`` order
(joint-major); the normalisation
``(x - mean) / std`` is a registered buffer inside the module, so every
exported form (torch.export, ONNX, TensorRT) takes raw features.

Output mapping (``ModelConfig.output``): the paper does not say what follows
the FCN's last Linear, only that activations must stay within [0.01, 1]
(the bound loss L_b, eq. 22). The options:

- ``"clamped"`` (default): the activation is clamp(z, 0.01, 1); in training the
  physics sees that clamp while L_b acts on z itself, and the last Linear
  starts every muscle at ``INITIAL_ACTIVATION``. Inside the bounds the map is
  the identity, so no muscle's gradient fades; below the floor a muscle
  produces no force and L_b alone pulls z back, so it cannot die there.
- ``"bounded"``: a = 0.01 + 0.99 sigmoid(z), smooth and always inside.
- ``"softplus"``: a = 0.01 + softplus(z), bounded below only.
- ``"linear"``: a = z, both bounds left to L_b (the paper read literally).

Why the bounds are hard: L_b only penalises its violation, so where the
muscles cannot balance a moment the dynamics loss buys torque with
activations above 1, and with the paper's weights a negative activation
costs only (1000 + 500) a^2 against 1000 a^2 for a positive one, so a linear
output uses antagonists with negative activation as free torque generators; a
device must never be sent either. Why "clamped" rather than "bounded": with
the five-coordinate balance and 43 muscles, the sigmoid's vanishing slope
near the floor let the effort term push some muscles (the hamstrings) to
0.01 early in training, where they stayed ("dead" at the floor), although
the loss's own per-sample minimum activates them. The README's measured
figures compare the outputs.

Choices where the paper is ambiguous (each repeated next to its code):
- Eqs. (5)-(6) write W^K, W^V as Dl x Dl, but C_j (eq. 3) is (Nj-1)*Dl wide.
  We project from (Nj-1)*Dl to Dl: the only shape that makes eq. (5) a valid
  product without discarding a joint.
- Eq. (7): Q_j, K_j, V_j are all (B, S, Dl), so Q K^T is S x S: each time step
  of joint j attends over the window's time steps of the *other* joints'
  concatenated features. We keep that literal reading. The alternative
  (joint j's query attends over the other joints as separate tokens at the same
  time step) contradicts eq. (3), which fuses the other joints into ONE
  feature vector per time step: with a single key per time step a same-step
  softmax is identically 1 and the "attention" degenerates to a linear map.
  The attention is unmasked inside the window: like the BiGRU, it sees the
  whole window, which holds only samples already received at run time.
- "Projected back to R^{B x S x Dl}" (before eq. 8): one output projection
  W^O_j (Dl x Dl) per joint, then the residual of eq. (8).
- The prediction FCN (Section III-C2, "output layers 256, 128, 64, 10"):
  Linear(2Dg -> 256) GELU, Linear(256 -> 128) GELU, Linear(128 -> 64) GELU,
  Linear(64 -> M). The paper does not name the FCN's nonlinearity; GELU
  matches the rest of the network.
- BiGRU-only ablation ("directly feeds concatenated joint features into the
  BiGRU"): the normalised 9 raw features go straight into the BiGRU; no
  embedding, no integration layer.
- CNN-BiGRU ablation ("replaces the MJCA module with three convolutional
  layers"): the normalised 9 raw features -> three Conv1d over time
  (64, 128, 128 channels, kernel 3, stride 1, padding 1), each GELU + dropout
  0.05 -> BiGRU. No joint embedding or integration layer either, so the
  ablation isolates what the per-joint embedding + attention add.
- Lookahead N (paper N = 0): eq. (13) takes the BiGRU output
  at step W-1-N instead of the last one, giving the backward GRU N samples of
  future context; the runtime then answers N model samples late.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn

from calib.coordinates import ACTIVATION_MAX, ACTIVATION_MIN
from edge.derivatives import FEATURES_PER_JOINT, SAGITTAL_INPUTS, input_feature_names
from train.options import ARCHITECTURES

OUTPUTS = ("clamped", "bounded", "softplus", "linear")


@dataclass(frozen=True)
class ModelConfig:
    """Every hyperparameter of the network (Section III-C2 defaults)."""

    n_muscles: int = 10
    architecture: str = "mjca_bigru"
    window: int = 20
    lookahead: int = 0
    joint_dim: int = 64
    """D_l: per-joint embedding width (eq. 2)."""
    heads: int = 2
    """N_h: attention heads (eq. 7), d_k = D_l / N_h."""
    integrated_dim: int = 128
    """D_i: width after joint integration (eq. 9)."""
    gru_hidden: int = 128
    """D_g: hidden size per direction (eqs. 10-11)."""
    gru_layers: int = 2
    gru_dropout: float = 0.1
    head_dims: tuple[int, ...] = (256, 128, 64)
    cnn_channels: tuple[int, ...] = (64, 128, 128)
    cnn_kernel: int = 3
    cnn_dropout: float = 0.05
    output: str = "clamped"
    """Output mapping after the last Linear: "clamped" or "bounded" (0.01 <= a <= 1),
    "softplus" (a >= 0.01) or "linear" (module doc)."""
    input_coordinates: tuple[str, ...] = SAGITTAL_INPUTS
    """The coordinates whose angle, velocity and acceleration the network reads (the
    paper's Nj "joints"): by default the sagittal hip, knee and ankle."""

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {', '.join(ARCHITECTURES)}, got {self.architecture!r}"
            )
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {self.output!r}")
        if self.n_muscles < 1:
            raise ValueError(f"n_muscles must be at least 1, got {self.n_muscles}")
        if self.window < 1:
            raise ValueError(f"window must be at least 1 sample, got {self.window}")
        if not 0 <= self.lookahead < self.window:
            raise ValueError(
                f"lookahead must be in [0, window-1] = [0, {self.window - 1}], got {self.lookahead}"
            )
        if self.joint_dim % self.heads:
            raise ValueError(
                f"joint_dim ({self.joint_dim}) must be divisible by heads ({self.heads})"
            )
        if self.cnn_kernel % 2 != 1:
            raise ValueError(
                f"cnn_kernel must be odd to keep the window length, got {self.cnn_kernel}"
            )
        object.__setattr__(self, "input_coordinates", tuple(self.input_coordinates))
        if len(self.input_coordinates) < 2 or len(set(self.input_coordinates)) != len(
            self.input_coordinates
        ):
            raise ValueError(
                f"input_coordinates must name at least two distinct coordinates, got "
                f"{list(self.input_coordinates)}"
            )
        object.__setattr__(self, "head_dims", tuple(int(d) for d in self.head_dims))
        object.__setattr__(self, "cnn_channels", tuple(int(c) for c in self.cnn_channels))

    @property
    def n_joints(self) -> int:
        """Nj: the number of input coordinates."""
        return len(self.input_coordinates)

    @property
    def input_features(self) -> tuple[str, ...]:
        """The input's column names (``edge.derivatives.input_feature_names``)."""
        return input_feature_names(self.input_coordinates)

    @property
    def output_step(self) -> int:
        """Index in the window of the time step the head reads (eq. 13 with lookahead)."""
        return self.window - 1 - self.lookahead

    def to_dict(self) -> dict:
        data = asdict(self)
        data["head_dims"] = list(self.head_dims)
        data["cnn_channels"] = list(self.cnn_channels)
        data["input_coordinates"] = list(self.input_coordinates)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config keys {unknown}; known: {sorted(known)}")
        return cls(**data)


INITIAL_ACTIVATION = 0.05
"""Where a "clamped" head starts every muscle: low, as a body at rest, inside the bounds."""
INITIAL_WEIGHT_SCALE = 0.1
"""The last Linear's default initial weights are scaled by this, so that every muscle
starts near ``INITIAL_ACTIVATION`` whatever the input."""


def clamped_activation(z: torch.Tensor) -> torch.Tensor:
    """The "clamped" head's activations: z clamped into the bounds of eq. (22)."""
    return z.clamp(ACTIVATION_MIN, ACTIVATION_MAX)


class InputNormalization(nn.Module):
    """(x - mean) / std with the training set's statistics as buffers."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        mean: np.ndarray | torch.Tensor,
        std: np.ndarray | torch.Tensor,
        features: tuple[str, ...],
    ) -> None:
        super().__init__()
        mean_t = torch.as_tensor(np.asarray(mean, dtype=np.float32)).reshape(-1)
        std_t = torch.as_tensor(np.asarray(std, dtype=np.float32)).reshape(-1)
        if mean_t.numel() != len(features) or std_t.numel() != len(features):
            raise ValueError(
                f"input_mean and input_std need {len(features)} entries ({', '.join(features)}), "
                f"got {mean_t.numel()} and {std_t.numel()}"
            )
        if not torch.all(torch.isfinite(mean_t)) or not torch.all(std_t > 0):
            raise ValueError("input_mean must be finite and input_std strictly positive")
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class JointEmbedding(nn.Module):
    """Eqs. (1)-(2): H_j = GELU(Linear(X_j)), one Linear per joint.

    (B, W, Nj*F) -> (B, W, Nj, Dl).
    """

    def __init__(self, n_joints: int, joint_dim: int) -> None:
        super().__init__()
        self.per_joint = nn.ModuleList(
            nn.Linear(FEATURES_PER_JOINT, joint_dim) for _ in range(n_joints)
        )
        self.activation = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        joints = []
        for j, linear in enumerate(self.per_joint):
            x_j = x[:, :, j * FEATURES_PER_JOINT : (j + 1) * FEATURES_PER_JOINT]  # eq. (1)
            joints.append(self.activation(linear(x_j)))  # eq. (2)
        return torch.stack(joints, dim=2)


class MultiJointCrossAttention(nn.Module):
    """Eqs. (3)-(8): each joint's queries attend to the other joints' features.

    (B, W, Nj, Dl) -> (B, W, Nj, Dl).
    Paper ambiguity 1: W^K, W^V are written Dl x Dl but C_j is (Nj-1)*Dl wide;
    we project (Nj-1)*Dl -> Dl, the only shape that makes eq. (5) valid without
    dropping a joint.
    Paper ambiguity 2: attention runs over the window's time steps (Q K^T is
    W x W, the literal shape of eq. 7), because eq. (3) fuses the other joints
    into one vector per time step; a same-step softmax over a single key would
    be identically 1.
    """

    def __init__(self, n_joints: int, joint_dim: int, heads: int) -> None:
        super().__init__()
        self.n_joints = n_joints
        self.heads = heads
        self.head_dim = joint_dim // heads
        others_dim = (n_joints - 1) * joint_dim
        self.query = nn.ModuleList(
            nn.Linear(joint_dim, joint_dim, bias=False) for _ in range(n_joints)
        )
        self.key = nn.ModuleList(
            nn.Linear(others_dim, joint_dim, bias=False) for _ in range(n_joints)
        )
        self.value = nn.ModuleList(
            nn.Linear(others_dim, joint_dim, bias=False) for _ in range(n_joints)
        )
        self.output = nn.ModuleList(nn.Linear(joint_dim, joint_dim) for _ in range(n_joints))

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        b, w, _ = t.shape
        return t.reshape(b, w, self.heads, self.head_dim).transpose(1, 2)  # (B, Nh, W, dk)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, w, _, d = h.shape
        updated = []
        for j in range(self.n_joints):
            h_j = h[:, :, j, :]
            others = [h[:, :, k, :] for k in range(self.n_joints) if k != j]
            c_j = torch.cat(others, dim=-1)  # eq. (3): (B, W, (Nj-1)*Dl)
            q = self._split_heads(self.query[j](h_j))  # eq. (4)
            k = self._split_heads(self.key[j](c_j))  # eq. (5)
            v = self._split_heads(self.value[j](c_j))  # eq. (6)
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
            attended = torch.softmax(scores, dim=-1) @ v  # eq. (7): (B, Nh, W, dk)
            a_j = self.output[j](attended.transpose(1, 2).reshape(b, w, d))
            updated.append(a_j + h_j)  # eq. (8)
        return torch.stack(updated, dim=2)


class JointIntegration(nn.Module):
    """Eq. (9): GELU(Linear(Concat_j H'_j)); (B, W, Nj, Dl) -> (B, W, Di)."""

    def __init__(self, n_joints: int, joint_dim: int, integrated_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_joints * joint_dim, integrated_dim)
        self.activation = nn.GELU()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, w = h.shape[:2]
        return self.activation(self.linear(h.reshape(b, w, -1)))


class ConvolutionalFrontEnd(nn.Module):
    """Section III-D2 ablation: three Conv1d over time, each GELU + dropout.

    (B, W, 3 Nj) -> (B, W, channels[-1]); padding keeps the window length.
    """

    def __init__(
        self, n_features: int, channels: tuple[int, ...], kernel: int, dropout: float
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for out in channels:
            layers += [
                nn.Conv1d(width, out, kernel, stride=1, padding=kernel // 2),
                nn.GELU(),
                nn.Dropout(dropout),
            ]
            width = out
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.transpose(1, 2)).transpose(1, 2)


class BiGRU(nn.Module):
    """Eqs. (10)-(12): stacked bidirectional GRU; (B, W, D_in) -> (B, W, 2*Dg)."""

    def __init__(self, input_dim: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.gru = nn.GRU(
            input_dim,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if layers > 1 else 0.0,
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(h)  # eq. (12): forward and backward outputs concatenated
        return out


class PredictionHead(nn.Module):
    """Eq. (14): FCN 2Dg -> head_dims... -> M, GELU between layers, then the output mapping.

    ``output`` "clamped": a = clamp(z, 0.01, 1) in eval mode; in training mode the head
    returns z itself, which ``clamped_activation`` clamps for the physics while the bound
    loss L_b (eq. 22) acts on z (the module doc says why); the last Linear starts every
    muscle at ``INITIAL_ACTIVATION``.

    ``output`` "softplus": a = 0.01 + softplus(z), never below eq. (22)'s lower
    bound; "bounded": a = 0.01 + 0.99 sigmoid(z), inside both of its bounds;
    "linear": a = z (the module doc says why each exists).
    """

    def __init__(
        self, input_dim: int, head_dims: tuple[int, ...], n_muscles: int, output: str
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = input_dim
        for out in head_dims:
            layers += [nn.Linear(width, out), nn.GELU()]
            width = out
        last = nn.Linear(width, n_muscles)
        if output == "clamped":
            with torch.no_grad():
                last.weight.mul_(INITIAL_WEIGHT_SCALE)
                last.bias.fill_(INITIAL_ACTIVATION)
        layers.append(last)
        self.layers = nn.Sequential(*layers)
        self.output = output

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        z = self.layers(h)
        if self.output == "clamped":
            return z if self.training else clamped_activation(z)
        if self.output == "softplus":
            return ACTIVATION_MIN + nn.functional.softplus(z)
        if self.output == "bounded":
            span = ACTIVATION_MAX - ACTIVATION_MIN
            return ACTIVATION_MIN + span * torch.sigmoid(z)
        return z


class MuscleActivationNet(nn.Module):
    """The whole network: raw features (B, W, 3 Nj) -> activations (B, M)."""

    def __init__(self, config: ModelConfig, input_mean: np.ndarray, input_std: np.ndarray) -> None:
        super().__init__()
        self.config = config
        n_features = len(config.input_features)
        self.normalize = InputNormalization(input_mean, input_std, config.input_features)
        self.front: nn.Module
        if config.architecture == "mjca_bigru":
            self.front = nn.Sequential(
                JointEmbedding(config.n_joints, config.joint_dim),
                MultiJointCrossAttention(config.n_joints, config.joint_dim, config.heads),
                JointIntegration(config.n_joints, config.joint_dim, config.integrated_dim),
            )
            gru_input = config.integrated_dim
        elif config.architecture == "cnn_bigru":
            self.front = ConvolutionalFrontEnd(
                n_features, config.cnn_channels, config.cnn_kernel, config.cnn_dropout
            )
            gru_input = config.cnn_channels[-1]
        else:  # "bigru": the concatenated joint features go straight into the BiGRU
            self.front = nn.Identity()
            gru_input = n_features
        self.bigru = BiGRU(gru_input, config.gru_hidden, config.gru_layers, config.gru_dropout)
        self.head = PredictionHead(
            2 * config.gru_hidden, config.head_dims, config.n_muscles, config.output
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.front(self.normalize(x))
        h_gru = self.bigru(h)  # (B, W, 2*Dg)
        h_final = h_gru[:, self.config.output_step, :]  # eq. (13), shifted by the lookahead
        return self.head(h_final)


def build_model(
    config: ModelConfig, input_mean: np.ndarray | None = None, input_std: np.ndarray | None = None
) -> MuscleActivationNet:
    """The network for ``config``; normalisation defaults to identity (mean 0, std 1)."""
    n_features = len(config.input_features)
    mean = np.zeros(n_features) if input_mean is None else input_mean
    std = np.ones(n_features) if input_std is None else input_std
    return MuscleActivationNet(config, mean, std)


__all__ = [
    "ARCHITECTURES",
    "OUTPUTS",
    "BiGRU",
    "ConvolutionalFrontEnd",
    "InputNormalization",
    "JointEmbedding",
    "JointIntegration",
    "ModelConfig",
    "MultiJointCrossAttention",
    "MuscleActivationNet",
    "PredictionHead",
    "build_model",
    "clamped_activation",
]
