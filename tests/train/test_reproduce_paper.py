"""scripts/reproduce_paper.py: what it runs, the tests' second trial it builds, how it
summarises (mean ± sd as Table II, the paired test per muscle), the speed warps."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.paths import GAIT2392 as DATA
from helpers.scripts import load_script

from train.opensim_io import read_storage

rp = load_script("reproduce_paper")


def test_the_plan_covers_every_experiment_once_with_the_seeds_each_asks_for():
    trial = rp.shared_trial()
    second = rp.replace(trial, name="slowed")
    quick = rp.plan([trial, rp.replace(trial, name="other")], second, rp.SETTINGS["quick"])
    names = [c.name for c in quick]
    assert len(names) == len(set(names))
    assert {c.trial for c in quick} == {trial.name, "slowed"}  # quick: the first trial only

    def seeds(**match):
        return sorted(c.seed for c in quick if all(getattr(c, k) == v for k, v in match.items()))

    # mean ± sd over three seeds: PI, supervised, every ablated loss, the automatic weighting
    assert seeds(trial=trial.name, mode="supervised", speeds=()) == [0, 1, 2]
    for weights in rp.LOSS_ABLATION.values():
        assert seeds(trial=trial.name, mode="pi", weights=weights, architecture="mjca_bigru",
                     muscles="all", balance="auto", speeds=(),
                     loss_weighting="fixed") == [0, 1, 2]  # fmt: skip
    assert seeds(trial=trial.name, loss_weighting="augmented_lagrangian") == [0, 1, 2]
    assert seeds(trial="slowed", loss_weighting="augmented_lagrangian") == [0, 1, 2]
    assert seeds(trial="slowed", loss_weighting="fixed") == [0, 1, 2]
    for match in ({"architecture": "cnn_bigru"}, {"architecture": "bigru"}, {"muscles": "ten"},
                  {"balance": "sagittal"}, {"speeds": rp.SPEEDS, "mode": "pi"},
                  {"speeds": rp.SPEEDS, "mode": "supervised"}):  # fmt: skip
        assert seeds(**match) == [0]
    full = rp.plan([trial, rp.replace(trial, name="other")], second, rp.SETTINGS["full"])
    assert {c.trial for c in full} == {trial.name, "other", "slowed"}
    assert sorted(c.seed for c in full if c.architecture == "bigru" and c.trial == "other") == [
        0, 1, 2,
    ]  # fmt: skip
    # per trial 3 seeds x (PI, supervised, 3 ablated losses, the automatic weighting, 2 other
    # networks, 2 speed models, ten muscles, sagittal); the second trial's 3 x 2
    assert (len(quick), len(full)) == (3 * 6 + 6 + 6, 2 * 3 * 12 + 6)


@pytest.mark.needs_data
def test_the_second_trial_is_the_shared_one_slowed_on_a_stretched_time_axis(tmp_path):
    trial = rp.shared_trial(DATA)
    slowed = rp.second_trial(trial, tmp_path, stretch=1.15)
    t0 = read_storage(trial.ik).time[0]  # every file stretches about the IK's start, 0.5 s
    assert t0 == pytest.approx(0.5)
    for key in ("ik", "grf", "so_activation", "so_force"):
        original, stretched = read_storage(getattr(trial, key)), read_storage(getattr(slowed, key))
        np.testing.assert_allclose(stretched.data, original.data)
        np.testing.assert_allclose(stretched.time, t0 + 1.15 * (original.time - t0), atol=1e-6)
    assert slowed.span_s == pytest.approx((0.5 + 1.15 * 0.05, 0.5 + 1.15 * 2.0))
    assert slowed.cycle_s == pytest.approx((0.5 + 1.15 * 0.118, 0.5 + 1.15 * 1.353))
    assert slowed.grf.name in slowed.loads.read_text()
    assert trial.grf.name not in slowed.loads.read_text().replace(slowed.grf.name, "")


def _scores(values_by_seed: list[list[float | None]], quantity="activation") -> list[dict]:
    return [
        {quantity: {"per_muscle": {f"m{j}": {"r2": v, "nrmse": v} for j, v in enumerate(seed)}}}
        for seed in values_by_seed
    ]


def test_mean_sd_runs_over_every_defined_seed_and_muscle():
    scores = _scores([[0.9, None, 0.5], [0.7, 0.1, None]])
    values = rp.muscle_values(scores, "activation", "r2")
    assert values.shape == (2, 3) and np.isnan(values[0, 1]) and np.isnan(values[1, 2])
    defined = np.array([0.9, 0.5, 0.7, 0.1])
    assert rp.mean_sd(values) == f"{defined.mean():.2f} ± {defined.std(ddof=1):.2f}"
    assert rp.mean_sd(np.full((2, 2), np.nan)) == "-"


def _series(errors: np.ndarray) -> dict:
    reference = np.zeros_like(errors)
    return {"series": {"activation": {"reference": reference.tolist(),
                                      "prediction": errors.tolist()}},
            "activation": {"per_muscle": {"m0": {}, "m1": {}}}}  # fmt: skip


def test_the_paired_test_names_the_model_with_the_smaller_errors():
    rng = np.random.default_rng(0)
    small = np.abs(rng.normal(0, 0.05, (80, 2)))
    large = small + np.abs(rng.normal(0.05, 0.02, (80, 2)))
    large[:, 1] = small[:, 1] + rng.normal(0, 0.001, 80)  # muscle 1: no difference
    tests = rp.paired_tests([_series(small)], [_series(large)], "activation")
    p, pi_error, supervised_error = tests["m0"]
    assert p < 1e-6 and pi_error < supervised_error
    assert tests["m1"][0] > 0.01
    swapped = rp.paired_tests([_series(large)], [_series(small)], "activation")["m0"]
    assert swapped[0] == pytest.approx(p) and swapped[1] > swapped[2]


@pytest.mark.needs_data
def test_speed_warps_change_the_cadence_only(subject):
    from train.dataset import load_trials
    from train.fit_config import TrialFiles

    trial = rp.shared_trial(DATA)
    legs = load_trials([TrialFiles(trial.ik, trial.grf, trial.loads)], subject, 100.0)[0]
    slow, fast = (rp.warped_legs(legs[:1], (s,), 0, subject)[0] for s in rp.SPEEDS)
    duration = {s: leg.time[-1] - leg.time[0] for s, leg in zip(rp.SPEEDS, (slow, fast))}
    assert duration[0.8] / duration[1.25] == pytest.approx(1.25 / 0.8, rel=0.03)
    # the same angles in another time: the ranges of every coordinate are kept
    np.testing.assert_allclose(np.ptp(slow.q, axis=0), np.ptp(fast.q, axis=0), rtol=0.02,
                               atol=1e-3)  # fmt: skip
    peak = {s: np.abs(np.gradient(leg.q[:, 3], leg.time)).max() for s, leg in
            zip(rp.SPEEDS, (slow, fast))}  # fmt: skip
    assert peak[1.25] / peak[0.8] == pytest.approx(1.25 / 0.8, rel=0.1)
