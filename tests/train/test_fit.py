"""train-fit: the loss goes down, seeds reproduce, a RUN saves and loads, resume, the CLI."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
import torch
from helpers.training import TINY, real_trial_args

from calib import default_subject
from train import training_loop
from train.checkpoints import InterruptCheckpoint, TrainingInterrupted
from train.cli.fit import main
from train.dataset import as_tensors, perturb_inputs, split_by_time
from train.fit import fit
from train.fit_config import FitError, TrainingConfig
from train.fit_report import torque_balance
from train.model import ModelConfig
from train.run import RunError, load_run
from train.training_loop import converged
from train.windows import WindowConfig, build_windows


def _fit(subject, walking_trial, out, epochs=3, seed=0, resume=False, overwrite=False, **training):
    config = TrainingConfig(epochs=epochs, seed=seed, **training)
    model_config = ModelConfig(n_muscles=len(subject.muscles), **TINY)
    trials = [walking_trial(n=120), walking_trial(n=120, side="l", phase=np.pi)]
    with InterruptCheckpoint() as interrupt:
        return fit(
            subject, trials, out, model_config, config, progress=False, resume=resume,
            overwrite=overwrite, interrupt=interrupt,
        )  # fmt: skip


@pytest.mark.slow
def test_a_few_epochs_reduce_the_loss(subject, tmp_path, walking_trial):
    result = _fit(subject, walking_trial, tmp_path / "run", epochs=8, learning_rate=3e-3)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    totals = [r["train_total"] for r in history]
    assert totals[-1] < 0.5 * totals[0]
    assert history[-1]["train_dynamics"] < history[0]["train_dynamics"]
    for key in ("dynamics", "effort", "bounds", "total"):
        assert key in result.metrics["validation"]["losses"]
    assert (tmp_path / "run" / "losses.png").stat().st_size > 1000


@pytest.mark.slow
def test_seeds_reproduce(subject, tmp_path, walking_trial):
    _fit(subject, walking_trial, tmp_path / "a", seed=1)
    _fit(subject, walking_trial, tmp_path / "b", seed=1)
    _fit(subject, walking_trial, tmp_path / "c", seed=2)
    weights = {
        name: torch.load(tmp_path / name / "weights.pt", weights_only=True) for name in "abc"
    }
    assert all(torch.equal(weights["a"][k], weights["b"][k]) for k in weights["a"])
    assert not all(torch.equal(weights["a"][k], weights["c"][k]) for k in weights["a"])


def test_run_saves_and_loads(subject, tmp_path, walking_trial):
    _fit(subject, walking_trial, tmp_path / "run", epochs=1)
    run = load_run(tmp_path / "run")
    assert run.subject.muscle_names == subject.muscle_names
    assert run.sample_rate_hz == 100.0 and run.config.gru_hidden == 16
    windows = build_windows([walking_trial(n=120)], subject, WindowConfig())
    state = torch.load(tmp_path / "run" / "weights.pt", weights_only=True)
    assert torch.allclose(state["normalize.mean"], run.model.normalize.mean)
    x = torch.as_tensor(windows.inputs[:4])
    out = run.model(x)
    assert out.shape == (4, len(subject.muscles)) and not run.model.training
    np.testing.assert_allclose(run.input_mean, state["normalize.mean"].numpy(), rtol=1e-6)
    with pytest.raises(RunError, match="missing"):
        load_run(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("weighting", ["fixed", "augmented_lagrangian"])
def test_resume_continues_to_the_same_weights(
    subject, tmp_path, monkeypatch, walking_trial, weighting
):
    """Stop a 4-epoch run after epoch 2 (its checkpoint), resume: same weights as straight
    (with the augmented Lagrangian, only if the multipliers were saved and restored)."""
    options = {"epochs": 4, "checkpoint_every": 1, "loss_weighting": weighting}
    _fit(subject, walking_trial, tmp_path / "straight", **options)
    real_write = training_loop.write_checkpoint

    def write_then_stop(path, state):
        real_write(path, state)
        if state["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(training_loop, "write_checkpoint", write_then_stop)
    with pytest.raises(KeyboardInterrupt):
        _fit(subject, walking_trial, tmp_path / "resumed", **options)
    monkeypatch.setattr(training_loop, "write_checkpoint", real_write)
    assert not (tmp_path / "resumed" / "weights.pt").exists()
    _fit(subject, walking_trial, tmp_path / "resumed", resume=True, **options)
    a = torch.load(tmp_path / "straight" / "weights.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "weights.pt", weights_only=True)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    history = json.loads((tmp_path / "resumed" / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    with pytest.raises(FitError, match="epochs"):
        _fit(subject, walking_trial, tmp_path / "resumed", epochs=5, resume=True)


@pytest.mark.slow
def test_augmented_lagrangian_raises_multipliers_and_balances_more_than_fixed(
    subject, tmp_path, walking_trial
):
    """The same seed and epochs: from epoch 1 the multipliers grow (logged), and the torque
    the muscles leave unbalanced ends smaller than with the fixed weights."""
    results = {
        weighting: _fit(subject, walking_trial, tmp_path / weighting, epochs=30,
                        learning_rate=3e-3, loss_weighting=weighting)
        for weighting in ("fixed", "augmented_lagrangian")
    }  # fmt: skip
    history = json.loads((tmp_path / "augmented_lagrangian" / "history.json").read_text())
    rms = [r["multiplier_rms"] for r in history]
    assert rms[0] > 0 and rms[-1] > rms[0]
    assert "multiplier_rms" not in json.loads((tmp_path / "fixed" / "history.json").read_text())[0]
    share = {
        w: r.metrics["train"]["torque_balance"]["all"]["balanced_share"] for w, r in results.items()
    }
    assert share["augmented_lagrangian"] > share["fixed"], share
    with pytest.raises(FitError, match="loss weighting must be one of fixed, augmented_lagrangian"):
        TrainingConfig(loss_weighting="uncertainty")


def test_label_free_extra_trials_join_the_training_set_only(subject, tmp_path, walking_trial):
    config = TrainingConfig(epochs=1)
    trials = [walking_trial(n=120), walking_trial(n=120, side="l", phase=np.pi)]
    extra = [walking_trial(n=120, phase=1.0)]
    result = fit(
        subject,
        trials,
        tmp_path / "run",
        ModelConfig(n_muscles=len(subject.muscles), **TINY),
        config,
        progress=False,
        extra_trials=extra,
    )
    n_extra = len(build_windows(extra, subject, WindowConfig()))
    assert result.metrics["windows"]["train"] == 78 + n_extra
    assert result.metrics["windows"]["validation"] == 20


def test_input_noise_changes_inputs_only_and_is_seeded(subject, walking_trial):
    windows = build_windows([walking_trial()], subject, WindowConfig())
    batch = as_tensors(windows.subset(np.arange(8)))

    def noisy(seed):
        return perturb_inputs(batch, 0.2, windows.rate_hz, torch.Generator().manual_seed(seed))

    first, again, other = noisy(1), noisy(1), noisy(2)
    change = first["inputs"] - batch["inputs"]
    assert change.abs().max() > 0
    # 0.2 degree of angle noise: about 0.0035 rad on the angle features (std)
    assert 0.002 < change[..., 0::3].std().item() < 0.005
    assert torch.equal(first["inputs"], again["inputs"])
    assert not torch.equal(first["inputs"], other["inputs"])
    for name in batch:
        if name != "inputs":
            assert first[name] is batch[name]
    assert perturb_inputs(batch, 0.0, windows.rate_hz, torch.Generator()) is batch
    with pytest.raises(FitError, match="input noise"):
        TrainingConfig(input_noise_deg=-1.0)


@pytest.mark.slow
def test_training_with_input_noise_is_seeded_and_differs(subject, tmp_path, walking_trial):
    plain = _fit(subject, walking_trial, tmp_path / "plain", epochs=2).metrics["train"]["losses"][
        "total"
    ]
    a = _fit(subject, walking_trial, tmp_path / "a", epochs=2, input_noise_deg=0.5)
    b = _fit(subject, walking_trial, tmp_path / "b", epochs=2, input_noise_deg=0.5)
    assert a.metrics["train"]["losses"]["total"] == b.metrics["train"]["losses"]["total"]
    assert a.metrics["train"]["losses"]["total"] != plain


def test_split_holds_out_the_end_of_each_trial(subject, walking_trial):
    trials = [walking_trial(n=120), walking_trial(n=120, side="l", phase=np.pi)]
    windows = build_windows(trials, subject, WindowConfig())
    train, validation = split_by_time(windows, 0.2)
    assert len(train) + len(validation) == len(windows)
    for trial in (0, 1):
        t_train = windows.time[train][windows.trial[train] == trial]
        t_val = windows.time[validation][windows.trial[validation] == trial]
        assert t_val.min() > t_train.max()
        assert abs(t_val.size - 0.2 * (t_val.size + t_train.size)) <= 1


def test_cli_refuses_bad_input_with_one_line(tmp_path, capsys):
    code = main(
        [
            "--ik",
            str(tmp_path / "missing.mot"),
            "--loads",
            str(tmp_path / "missing.xml"),
            "--subject",
            str(tmp_path / "missing.json"),
            "--out",
            str(tmp_path / "run"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("train-fit: error:")


@pytest.mark.slow
@pytest.mark.needs_data
def test_cli_on_the_real_trial(tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"model": TINY, "training": {"checkpoint_every": 1}}))
    code = main([*real_trial_args(tmp_path / "run"), "--config", str(config)])
    assert code == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["windows"]["train"] > 100 and metrics["epochs"] == 2
    scores = metrics["validation"]["activation"]
    assert set(scores["per_muscle"]) == set(default_subject().muscle_names)
    assert any(":l:" in name for name in metrics["trials"])
    run = load_run(tmp_path / "run")
    assert run.training["mode"] == "pi" and run.training["window"]["stride"] == 2


@pytest.mark.slow
def test_an_existing_run_is_refused_without_resume_or_overwrite(subject, tmp_path, walking_trial):
    _fit(subject, walking_trial, tmp_path / "run", epochs=1)
    before = (tmp_path / "run" / "weights.pt").stat().st_mtime_ns
    with pytest.raises(FitError, match=r"already holds a training run.*--resume.*--overwrite"):
        _fit(subject, walking_trial, tmp_path / "run", epochs=1)
    assert (tmp_path / "run" / "weights.pt").stat().st_mtime_ns == before
    (tmp_path / "run" / "notes.txt").write_text("mine")
    _fit(subject, walking_trial, tmp_path / "run", epochs=2, seed=3, overwrite=True)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]  # a new run, not the old one continued
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"  # not a run file: kept


@pytest.mark.slow
def test_ctrl_c_mid_epoch_writes_the_last_completed_epoch_and_resume_matches(
    subject, tmp_path, monkeypatch, walking_trial
):
    """A real SIGINT in epoch 3 of 4 (checkpoints only every 25 epochs): the checkpoint
    holds epoch 2 and --resume ends where an uninterrupted run ends."""
    _fit(subject, walking_trial, tmp_path / "straight", epochs=4)
    handler_before = signal.getsignal(
        signal.SIGINT
    )  # SIG_IGN where a shell started us in the background
    real_losses = training_loop.batch_losses
    calls = {"n": 0}
    steps_per_epoch = 10  # 78 training windows in batches of 8

    def interrupt_in_epoch_three(model, batch, config):
        calls["n"] += 1
        if calls["n"] == 2 * steps_per_epoch + 3:
            signal.raise_signal(signal.SIGINT)
        return real_losses(model, batch, config)

    monkeypatch.setattr(training_loop, "batch_losses", interrupt_in_epoch_three)
    with pytest.raises(TrainingInterrupted, match=r"after epoch 2 is in .*--resume"):
        _fit(subject, walking_trial, tmp_path / "resumed", epochs=4)
    monkeypatch.setattr(training_loop, "batch_losses", real_losses)
    state = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and not (tmp_path / "resumed" / "weights.pt").exists()
    assert signal.getsignal(signal.SIGINT) is handler_before  # handler restored
    _fit(subject, walking_trial, tmp_path / "resumed", epochs=4, resume=True)
    a = torch.load(tmp_path / "straight" / "weights.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "weights.pt", weights_only=True)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_the_convergence_rule_on_a_known_history():
    """Loss falls 10 % per epoch for 10 epochs, then 0.1 % per epoch: with patience 5 and
    1 %, the first epoch whose last 5 epochs improved the best by < 1 % is epoch 15."""
    losses = [100 * 0.9**e for e in range(10)] + [100 * 0.9**9 * 0.999**e for e in range(1, 20)]
    history = [{"validation_total": v, "train_total": 2 * v} for v in losses]
    config = TrainingConfig(patience=5, min_improvement=0.01)
    stops = [n for n in range(1, len(history) + 1) if converged(history[:n], config)]
    assert stops[0] == 15
    assert not any(converged(history[:n], TrainingConfig(patience=0)) for n in range(1, 30))
    # without validation the training loss decides
    assert converged([{"train_total": v} for v in losses[:15]], config)


@pytest.mark.slow
def test_training_stops_by_the_rule_and_says_why(subject, tmp_path, capsys, walking_trial):
    result = _fit(
        subject, walking_trial, tmp_path / "run", epochs=50, patience=2, min_improvement=0.9
    )
    assert result.metrics["epochs"] == 3 and result.metrics["epochs_cap"] == 50
    assert "convergence at epoch 3" in result.metrics["stopped_by"]
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 3  # the stop is checkpointed
    out = capsys.readouterr().out
    for name in subject.coordinates:
        assert name in out
    assert "% of peak" in out and "balanced" in out and "loss plot:" in out


def test_torque_balance_by_hand():
    required = np.array([[10.0, -4.0], [-10.0, 4.0]])
    balance = torque_balance(required.copy(), required, ("a", "b"))
    assert balance["a"]["rmse_nm"] == 0 and balance["all"]["balanced_share"] == 1
    half = torque_balance(0.5 * required, required, ("a", "b"))
    assert half["a"]["rmse_nm"] == pytest.approx(5.0) and half["a"]["peak_nm"] == 10.0
    assert half["a"]["rmse_percent_of_peak"] == pytest.approx(50.0)
    assert half["b"]["balanced_share"] == pytest.approx(0.5)
    assert torque_balance(0 * required, required, ("a", "b"))["all"]["balanced_share"] == 0.0


@pytest.mark.slow
@pytest.mark.needs_data
def test_one_leg_trains_alone(subject, tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"model": TINY}))
    code = main([*real_trial_args(tmp_path / "run"), "--config", str(config), "--legs", "right"])
    assert code == 0
    trials = json.loads((tmp_path / "run" / "metrics.json").read_text())["trials"]
    assert trials and all(":r:" in name for name in trials)
