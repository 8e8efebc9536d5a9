"""EMG: envelopes of raw EMG, channel names to muscles, r and its lag, train-eval --emg.

The EMG here is synthetic with a known relation to an activation (a delayed, scaled,
noisy copy; raw EMG as noise modulated by it), so a wrong lag sign or a broken
envelope fails.
"""

import json

import numpy as np
import pytest

from train.cli.evaluate import main
from train.emg import (
    EmgError,
    EmgSettings,
    channel_muscle,
    envelope,
    lagged_r,
    map_channels,
    read_emg,
)
from train.opensim_io import write_storage

MUSCLES = ("tib_ant_r", "med_gas_r", "vas_lat_r")
DELAY_S = 0.04


def activation(t: np.ndarray, phase: float = 0.0) -> np.ndarray:
    """A gait-like activation: two bursts per 1.1 s cycle."""
    cycle = ((t + phase) % 1.1) / 1.1
    return (
        0.05
        + 0.6 * np.exp(-(((cycle - 0.2) / 0.06) ** 2))
        + 0.3 * np.exp(-(((cycle - 0.65) / 0.08) ** 2))
    )


def test_lag_search_finds_the_delay_with_its_sign():
    """The estimate follows the EMG by 40 ms: estimate(t) = envelope(t - 0.04)."""
    rng = np.random.default_rng(0)
    t_emg = np.arange(0.0, 3.0, 0.005)
    emg = 3.0 * activation(t_emg) + 0.1 + rng.normal(0, 0.02, t_emg.size)
    t_est = np.arange(0.0, 3.0, 0.01)
    estimate = activation(t_est - DELAY_S)
    r, lag, _ = lagged_r(t_emg, emg, t_est, estimate, (0.1, 2.9), max_lag_s=0.1)
    assert lag == pytest.approx(DELAY_S, abs=0.0015) and r > 0.99
    r0, lag0, _ = lagged_r(t_emg, emg, t_est, estimate, (0.1, 2.9), max_lag_s=0.0)
    assert lag0 == 0.0 and r0 < r - 0.05
    # the estimate leading the EMG gives a negative lag
    _, lead, _ = lagged_r(t_emg, emg, t_est, activation(t_est + DELAY_S), (0.1, 2.9), 0.1)
    assert lead == pytest.approx(-DELAY_S, abs=0.0015)


def raw_emg(t: np.ndarray, seed: int = 1) -> np.ndarray:
    """Raw EMG: white noise (std 1 mV) modulated by the activation, plus a 0.5 Hz drift."""
    rng = np.random.default_rng(seed)
    return activation(t) * rng.normal(0.0, 1e-3, t.size) + 2e-3 * np.sin(np.pi * t)


def test_raw_emg_envelope_follows_the_modulating_activation():
    t = np.arange(0.0, 3.3, 1 / 2000)
    time, env = envelope(t, raw_emg(t)[:, None], EmgSettings(raw=True))
    inside = (time > 0.2) & (time < 3.1)
    r = np.corrcoef(env[inside, 0], activation(time[inside]))[0, 1]
    assert r > 0.95
    # what an envelope without rectification would be: the signal's mean, no modulation
    unrectified = np.corrcoef(raw_emg(t)[inside[: t.size]], activation(t[inside[: t.size]]))
    assert abs(unrectified[0, 1]) < 0.3


def test_raw_emg_too_slowly_sampled_is_refused():
    t = np.arange(0.0, 2.0, 1 / 600)
    with pytest.raises(EmgError, match="--emg-band 20 270"):
        envelope(t, raw_emg(t)[:, None], EmgSettings(raw=True), "slow.csv")


@pytest.mark.parametrize(
    ("channel", "muscle"),
    [
        ("R_TA", "tib_ant_r"),
        ("TA_R", "tib_ant_r"),
        ("RTA", "tib_ant_r"),
        ("Right Tibialis Anterior", "tib_ant_r"),
        ("EMG_VL_R", "vas_lat_r"),
        ("GASMED_R", "med_gas_r"),
        ("medial gastrocnemius", "med_gas_r"),
        ("MG", "med_gas_r"),
        ("L_TA", None),
        ("R_SOL", None),
        ("foo", None),
    ],
)
def test_channel_names_map_to_the_estimated_muscles(channel, muscle):
    assert channel_muscle(channel, MUSCLES, "r")[0] == muscle


def test_channel_mapping_reasons_and_explicit_map():
    chosen, left_out = map_channels(("L_TA", "R_SOL", "R_TA"), MUSCLES, "r", None, "f.csv")
    assert chosen == {"R_TA": "tib_ant_r"}
    assert left_out == ["L_TA (the other leg)", "R_SOL (soleus is not an estimated muscle)"]
    chosen, _ = map_channels(("ch1", "ch2"), MUSCLES, "r", {"ch1": "vas_lat_r", "ch2": None}, "f")
    assert chosen == {"ch1": "vas_lat_r"}
    with pytest.raises(EmgError, match="--emg-map"):
        map_channels(("ch1", "ch2"), MUSCLES, "r", None, "f.csv")
    with pytest.raises(EmgError, match=r"muscles \['soleus_r'\] are not estimated"):
        map_channels(("ch1",), MUSCLES, "r", {"ch1": "soleus_r"}, "f")


def write_case(tmp_path, raw: bool):
    """Predictions (100 Hz), labels (60 Hz) and an EMG CSV of the three muscles.

    The estimate follows each muscle's EMG by 40 ms, the labels follow it by 20 ms and
    are a noisier shape (a second burst scaled differently), so the reference's r differs.
    """
    t_est = np.arange(0.0, 3.0, 0.01)
    phases = (0.0, 0.3, 0.6)
    estimate = np.column_stack([activation(t_est - DELAY_S, p) for p in phases])
    write_storage(tmp_path / "est_activation.sto", t_est, MUSCLES, estimate)
    t_ref = np.arange(0.0, 3.0, 1 / 60)
    labels = np.column_stack([activation(t_ref - 0.02, p) ** 2 for p in phases])
    write_storage(tmp_path / "labels.sto", t_ref, MUSCLES, labels)
    rate = 2000 if raw else 100
    t_emg = np.arange(0.0, 3.0, 1 / rate)
    rng = np.random.default_rng(3)
    if raw:
        columns = [activation(t_emg, p) * rng.normal(0, 1e-3, t_emg.size) for p in phases]
    else:
        columns = [2 * activation(t_emg, p) + rng.normal(0, 0.01, t_emg.size) for p in phases]
    rows = np.column_stack([t_emg, *columns])
    path = tmp_path / "emg.csv"
    header = "time,R_TA,Right Medial Gastrocnemius,VL_R,L_TA"
    np.savetxt(path, np.column_stack([rows, rows[:, 1]]), delimiter=",", header=header, comments="")
    return tmp_path / "est", tmp_path / "labels.sto", path


@pytest.mark.parametrize("raw", [False, True])
def test_train_eval_emg_table_json_and_plot(tmp_path, capsys, raw):
    prefix, labels, emg = write_case(tmp_path, raw)
    out_json, out_png = tmp_path / "scores.json", tmp_path / "emg.png"
    args = ["--predictions", str(prefix), "--labels", str(labels), "--emg", str(emg),
            "--emg-lag", "--json", str(out_json), "--plot", str(out_png), "--start", "0.2",
            "--end", "2.8", *(["--emg-raw"] if raw else [])]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "EMG r" in out and "L_TA (the other leg)" in out
    scores = json.loads(out_json.read_text())
    assert set(scores["emg"]) == set(MUSCLES)
    tolerance_ms = 8 if raw else 2  # a raw envelope carries the noise's own fluctuation
    for entry in scores["emg"].values():
        assert entry["r"] > (0.95 if raw else 0.99)
        assert entry["lag_ms"] == pytest.approx(40, abs=tolerance_ms)
        assert entry["reference_lag_ms"] == pytest.approx(20, abs=tolerance_ms)
        assert 0 < entry["reference_r"] < entry["r"]
    assert scores["emg"]["med_gas_r"]["channel"] == "Right Medial Gastrocnemius"
    assert out_png.stat().st_size > 10_000
    # no lag search: lag 0, and the 40 ms delay costs correlation
    assert main(["--predictions", str(prefix), "--emg", str(emg), "--json", str(out_json),
                 *(["--emg-raw"] if raw else [])]) == 0  # fmt: skip
    unshifted = json.loads(out_json.read_text())["emg"]
    assert all(e["lag_ms"] == 0 and e["r"] < 0.99 for e in unshifted.values())


def test_emg_without_a_matching_channel_is_one_line(tmp_path, capsys):
    prefix, _, _ = write_case(tmp_path, raw=False)
    path = tmp_path / "other.csv"
    path.write_text("time,ch1,ch2\n0,1,2\n0.01,1,2\n0.02,1,2\n")
    assert main(["--predictions", str(prefix), "--emg", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--emg-map" in err[0] and "ch1 (no known muscle name)" in err[0]


def test_emg_storage_files_read_like_csv(tmp_path):
    t = np.arange(0.0, 1.0, 0.01)
    write_storage(tmp_path / "emg.sto", t, ("R_TA", "R_MG"), np.column_stack([t, 2 * t]))
    recording = read_emg(tmp_path / "emg.sto")
    assert recording.channels == ("R_TA", "R_MG") and recording.data.shape == (100, 2)
    (tmp_path / "bad.csv").write_text("channel,x\n0,1\n1,2\n")
    with pytest.raises(EmgError, match="expected a time column"):
        read_emg(tmp_path / "bad.csv")
