"""The network: shapes, lookahead, cross-joint mixing, normalisation, export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from train.model import (
    ARCHITECTURES,
    INITIAL_ACTIVATION,
    ModelConfig,
    MultiJointCrossAttention,
    build_model,
    clamped_activation,
)


def _model(**overrides):
    torch.manual_seed(0)
    return build_model(ModelConfig(**overrides)).eval()


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_output_shape_is_batch_by_muscles(architecture):
    model = _model(architecture=architecture, n_muscles=7)
    out = model(torch.randn(4, 20, 9))
    assert out.shape == (4, 7)
    assert torch.all(torch.isfinite(out))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("lookahead", [0, 2, 5])
def test_head_reads_step_w_minus_1_minus_lookahead(architecture, lookahead):
    """The head reads BiGRU step W-1-N: compare with the BiGRU output taken by hand."""
    model = _model(architecture=architecture, lookahead=lookahead)
    x = torch.randn(2, 20, 9)
    h = model.bigru(model.front(model.normalize(x)))
    expected = model.head(h[:, 20 - 1 - lookahead, :])
    assert torch.allclose(model(x), expected, atol=1e-6)
    distances = [(model(x) - model.head(h[:, step, :])).abs().max().item() for step in range(20)]
    assert int(np.argmin(distances)) == 20 - 1 - lookahead
    assert sorted(distances)[1] > 0.0


def test_lookahead_out_of_window_is_refused():
    with pytest.raises(ValueError, match="lookahead"):
        ModelConfig(lookahead=20)
    with pytest.raises(ValueError, match="architecture"):
        ModelConfig(architecture="transformer")


def test_cross_attention_mixes_joints():
    """Perturbing joint 0's features changes joints 1 and 2's attended features."""
    torch.manual_seed(1)
    attention = MultiJointCrossAttention(n_joints=3, joint_dim=16, heads=2)
    h = torch.randn(1, 20, 3, 16)
    perturbed = h.clone()
    perturbed[:, :, 0, :] += torch.randn(1, 20, 16)
    before, after = attention(h), attention(perturbed)
    for joint in (1, 2):
        assert (after[:, :, joint] - before[:, :, joint]).abs().max() > 1e-3


def test_mjca_output_depends_on_every_joint_but_embedding_is_per_joint():
    model = _model()
    x = torch.randn(1, 20, 9)
    x_knee = x.clone()
    x_knee[:, :, 3:6] += 1.0
    embedded, embedded_knee = model.front[0](x), model.front[0](x_knee)
    assert torch.equal(embedded[:, :, 0], embedded_knee[:, :, 0])  # hip embedding untouched
    mixed = model.front[1](embedded)
    mixed_knee = model.front[1](embedded_knee)
    assert (mixed[:, :, 0] - mixed_knee[:, :, 0]).abs().max() > 1e-3  # ...but attention mixes


def test_bigru_only_baseline_has_no_attention_or_convolution():
    model = _model(architecture="bigru")
    kinds = {type(m).__name__ for m in model.modules()}
    assert "MultiJointCrossAttention" not in kinds and "Conv1d" not in kinds
    assert model.bigru.gru.input_size == 9
    cnn = _model(architecture="cnn_bigru")
    convs = [m for m in cnn.modules() if isinstance(m, torch.nn.Conv1d)]
    assert [c.out_channels for c in convs] == [64, 128, 128]
    assert all(c.kernel_size == (3,) and c.padding == (1,) for c in convs)


def test_paper_sizes():
    model = _model()
    gru = model.bigru.gru
    assert (gru.hidden_size, gru.num_layers, gru.bidirectional, gru.dropout) == (128, 2, True, 0.1)
    linears = [m for m in model.head.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (256, 256),
        (256, 128),
        (128, 64),
        (64, 10),
    ]
    attention = model.front[1]
    assert attention.key[0].in_features == 128 and attention.key[0].out_features == 64


def test_normalisation_is_inside_the_module():
    """A model with mean/std equals the identity-normalised model on normalised input."""
    mean = np.arange(9, dtype=np.float64)
    std = np.linspace(0.5, 4.0, 9)
    torch.manual_seed(0)
    normalised = build_model(ModelConfig(), mean, std).eval()
    torch.manual_seed(0)
    plain = build_model(ModelConfig()).eval()
    x = torch.randn(3, 20, 9)
    x_norm = (x - torch.tensor(mean, dtype=torch.float32)) / torch.tensor(std, dtype=torch.float32)
    assert torch.allclose(normalised(x), plain(x_norm), atol=1e-5)
    assert "normalize.mean" in normalised.state_dict()
    with pytest.raises(ValueError, match="input_std"):
        build_model(ModelConfig(), mean, np.zeros(9))


def test_config_round_trips_through_a_dict():
    config = ModelConfig(architecture="cnn_bigru", n_muscles=43, lookahead=2)
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({"n_muscle": 3})


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_exports_with_torch_export_and_onnx(architecture, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model = build_model(
        ModelConfig(architecture=architecture, lookahead=1), np.full(9, 0.1), np.full(9, 2.0)
    ).eval()
    x = torch.randn(1, 20, 9)
    exported = torch.export.export(model, (x,))
    assert torch.allclose(exported.module()(x), model(x), atol=1e-5)
    path = tmp_path / "model.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=True, verbose=False)
    session = onnxruntime.InferenceSession(str(path))
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    np.testing.assert_allclose(onnx_out, model(x).detach().numpy(), atol=1e-5)


def test_softplus_output_never_below_the_lower_bound_linear_can_be():
    x = 50 * torch.randn(64, 20, 9)
    bounded = _model(output="softplus")
    assert bounded(x).min().item() >= 0.01
    linear = _model(output="linear")
    head_z = linear.head.layers(linear.bigru(linear.front(linear.normalize(x)))[:, -1, :])
    assert torch.equal(linear(x), head_z)
    with pytest.raises(ValueError, match="output"):
        ModelConfig(output="tanh")


def test_bounded_output_stays_inside_both_bounds_of_eq_22():
    x = 50 * torch.randn(64, 20, 9)
    model = _model(output="bounded")
    with torch.no_grad():
        model.head.layers[-1].bias.fill_(40.0)
        high = model(x)
        model.head.layers[-1].bias.fill_(-40.0)
        low = model(x)
    floor = torch.tensor(0.01, dtype=torch.float32).item()  # 0.01 as float32 holds it
    assert high.max().item() <= 1.0 and high.min().item() > 0.99
    assert low.min().item() >= floor and low.max().item() < 0.02


def test_clamped_output_is_the_raw_output_in_training_and_its_clamp_in_eval():
    torch.manual_seed(2)
    model = build_model(ModelConfig(n_muscles=6, output="clamped"))
    x = torch.randn(16, 20, 9)
    model.eval()
    with torch.no_grad():
        evaluated = model(x)
    assert evaluated.min() >= 0.01 and evaluated.max() <= 1.0
    # every muscle starts low and inside the bounds, whatever the input
    assert torch.allclose(evaluated, torch.full_like(evaluated, INITIAL_ACTIVATION), atol=0.04)
    with torch.no_grad():
        model.head.layers[-1].bias.fill_(-0.5)  # push the raw output below the floor
    model.train()
    model.bigru.gru.dropout = 0.0
    raw = model(x)
    assert raw.max() < 0.0
    model.eval()
    with torch.no_grad():
        assert torch.all(model(x) == 0.01)


def test_clamped_output_keeps_a_gradient_below_the_floor_through_the_bound_loss():
    """Raw outputs below 0.01 produce no force (the physics sees the clamp), and the bound
    loss on the raw output pulls them back up: no muscle can die at the floor."""
    from train import losses

    raw = torch.tensor([[-0.3, 0.2]], requires_grad=True)
    activation = clamped_activation(raw)
    parts = losses.physics_informed_loss(
        activation,
        force_gain=torch.tensor([[1000.0, 1000.0]]),
        force_passive=torch.zeros(1, 2),
        moment_arms=torch.tensor([[[0.05], [0.05]]]),
        required_torque=torch.tensor([[30.0]]),
        bounded=raw,
    )
    assert parts["bounds"].item() == pytest.approx((0.01 + 0.3) ** 2)
    parts["total"].backward()
    # the dynamics wants more torque: both raw outputs are pushed up, the clamped one by L_b
    assert raw.grad[0, 0] < 0 and raw.grad[0, 1] < 0
