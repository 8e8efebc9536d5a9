"""Reproduce the experiments of the paper's Section IV on the trials given, and write the report.

    python scripts/reproduce_paper.py [--quick | --smoke] [--out DIR] [--report FILE]
        [TRIAL.json ...]

Every experiment trains with ``train.fit.fit`` (the function behind ``train-fit``) and scores
with ``train.evaluate.evaluate`` (behind ``train-eval``) against OpenSim's static
optimisation of the trial, over the trial's scored span (subject01: 0.55-2.5 s, past the
SO's filter edge), on the paper's ten muscles (PS RF BF SM IL VI VL VM GL GM):

1. PI-MJCA-BiGRU (label-free) against the supervised MJCA-BiGRU (the same network, MSE on
   OpenSim's static-optimisation activations): per-muscle R², NRMSE and Pearson r of
   activations and active forces, box plots over seeds like Fig. 5, and per muscle a
   paired Wilcoxon signed-rank test of the two models' absolute activation errors frame by
   frame. Scored on the whole span (which the models trained on: the supervised one on
   the reference itself) and on the held-out last 20 % of it.
2. The loss ablation of Table II (all terms; without L_b; without L_p; without L_d), and
   the automatic weighting (``train-fit --loss-weighting augmented_lagrangian``) against
   the fixed weights 3/1000/500 on every trial and on the tests' second trial, with the
   training time of each: mean ± sd over muscles x seeds, as the paper's over
   subject-condition-muscle combinations.
3. The architecture ablation of Fig. 9 (MJCA-BiGRU, CNN-BiGRU, BiGRU-only).
4. Generalisation across walking speed, in the spirit of the paper's leave-one-speed-out
   test: train on the trial time-warped slower (cadence x 0.8) and faster (x 1.25) and
   score on the recorded speed, which neither model saw. The warps are
   ``train.augment``'s (two spliced gait cycles per leg, no amplitude or offset change):
   each coordinate's velocity x s and acceleration x s², the dynamic part of the vertical
   ground reaction x s². The supervised model's labels for the warped trials come from
   ``train.static_optimization`` (OpenSim's exist for the recorded speed only). A warp is
   not another speed: a person walking faster takes longer steps and spends less of the
   cycle in stance.
5. The paper's ten muscles modelled alone against the 43 right-leg muscles of gait2392
   (both with PI and with ``train.static_optimization``), and the paper's sagittal
   balance (``--sagittal``) against the five-coordinate one.
6. A t-SNE of the representation the prediction head reads (the BiGRU's last step) of the
   PI and the supervised model on the trial's windows, and the Procrustes similarity of
   the two embeddings (1 - SciPy's disparity), as Table I and Fig. 8 (needs scikit-learn;
   skipped with a line where absent).

Settings: the full run trains as ``train-fit`` does by default (up to 1000 epochs, stopped
by its convergence rule), three seeds for every experiment, on every trial given.
``--quick`` trains 40 epochs without the convergence rule, three seeds where the report
gives mean ± sd (experiments 1 and 2) and one elsewhere, on the first trial (plus the
tests' second trial for the weighting comparison). ``--smoke`` checks the whole pipeline
in about a minute (one epoch of a tiny network, one seed; its figures mean nothing).

A trial is a JSON file ``{"name", "ik", "grf", "loads", "osim", "so_activation",
"so_force", "span_s": [start, end], "cycle_s": [heel strike, next heel strike]}`` (paths
relative to the JSON file); the default is the shared subject01 walk in
``../shared/data/opensim-gait2392``. The tests' second trial is that walk slowed down
1.15 times (IK, GRF and OpenSim's SO on a stretched time axis, values unchanged: a second,
slower trial whose physics the loss recomputes; OpenSim's activations are not), written
under ``OUT/trials/``.

Every trained run, score and static optimisation is kept under ``--out`` (default
``reproduce_paper/``) and reused: a killed run continues from its last checkpoint (every
25 epochs), finished cases are skipped. The report (``--report``, default
``docs/results.md``) and its figures (``docs/results/``) are written from the cache at the
end. Needs the ``opensim`` package (the subjects are read from the trial's scaled model).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from train.options import PAPER_LOSS_WEIGHTS

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "opensim-gait2392"
SECOND_TRIAL_STRETCH = 1.15
"""The tests' second trial (tests/train/test_data_checks.py): the shared walk slowed 1.15x."""
SECOND_NOTE = " and the tests' second trial"
SPEEDS = (0.8, 1.25)
"""Cadence factors of the speed experiment: ``train.augment``'s default range's ends."""
HELD_OUT_FRACTION = 0.2
"""train-fit's validation fraction: the last 20 % of each trial's windows never train."""
FIXED_WEIGHTS = PAPER_LOSS_WEIGHTS
W_D, W_P, W_B = FIXED_WEIGHTS
LOSS_ABLATION = {
    "all terms": FIXED_WEIGHTS,
    "without L_b": (W_D, W_P, 0.0),
    "without L_p": (W_D, 0.0, W_B),
    "without L_d": (0.0, W_P, W_B),
}
PAPER_TABLE_II = {
    "all terms": ("0.84 ± 0.15", "0.08 ± 0.04", "0.82 ± 0.18", "0.09 ± 0.04"),
    "without L_b": ("0.78 ± 0.23", "0.10 ± 0.04", "0.75 ± 0.25", "0.12 ± 0.04"),
    "without L_p": ("0.65 ± 0.33", "0.12 ± 0.05", "0.63 ± 0.16", "0.14 ± 0.03"),
    "without L_d": ("0.11 ± 0.56", "0.22 ± 0.06", "0.09 ± 0.44", "0.22 ± 0.05"),
}
PAPER_FIG_9 = {"mjca_bigru": (0.84, 0.82)}
ARCHITECTURE_NAMES = {"mjca_bigru": "MJCA-BiGRU", "cnn_bigru": "CNN-BiGRU", "bigru": "BiGRU-only"}
SCORE_COLUMNS = ("act. R²", "act. NRMSE", "force R²", "force NRMSE")
"""``summary_row``'s columns."""
TRAINING_COLUMNS = ("train s", "s / epoch", "balanced")
"""``training_row``'s columns."""
PAPER_LABELS = ("PS", "RF", "BF", "SM", "IL", "VI", "VL", "VM", "GL", "GM")
"""The paper's names of ``calib.PAPER_MUSCLES``, in that order."""
TINY_NETWORK = {"joint_dim": 8, "heads": 2, "integrated_dim": 16, "gru_hidden": 16,
                "head_dims": [16]}  # fmt: skip


def paper_label(muscle: str) -> str:
    from calib import PAPER_MUSCLES

    return dict(zip(PAPER_MUSCLES, PAPER_LABELS)).get(muscle, muscle)


# --- what is run --------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    """One recorded trial with OpenSim's static optimisation of it (module doc: the JSON)."""

    name: str
    ik: Path
    grf: Path
    loads: Path
    osim: Path
    so_activation: Path
    so_force: Path
    span_s: tuple[float, float]
    cycle_s: tuple[float, float] | None = None

    @classmethod
    def from_json(cls, path: Path) -> Trial:
        try:
            data = json.loads(path.read_text())
            paths = {k: (path.parent / data[k]).resolve() for k in
                     ("ik", "grf", "loads", "osim", "so_activation", "so_force")}  # fmt: skip
            cycle = data.get("cycle_s")
            return cls(name=data["name"], **paths, span_s=tuple(data["span_s"]),
                       cycle_s=tuple(cycle) if cycle else None)  # fmt: skip
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise SystemExit(f"reproduce_paper: trial {path}: {exc!r}; see the module doc") from exc

    def missing(self) -> list[Path]:
        return [p for p in (self.ik, self.grf, self.loads, self.osim, self.so_activation,
                            self.so_force) if not p.is_file()]  # fmt: skip


def shared_trial(data: Path = DATA) -> Trial:
    """The shared subject01 walk (../shared/data/README.md: score from 0.55 s, one right
    gait cycle from heel strike 0.618 s to 1.853 s)."""
    so = data / "so"
    return Trial(
        name="subject01_walk",
        ik=data / "subject01_walk1_ik.mot",
        grf=data / "subject01_walk1_grf.mot",
        loads=data / "subject01_walk1_grf.xml",
        osim=data / "subject01_simbody_adjusted.osim",
        so_activation=so / "subject01_walk1_ik_StaticOptimization_activation.sto",
        so_force=so / "subject01_walk1_ik_StaticOptimization_force.sto",
        span_s=(0.55, 2.5),
        cycle_s=(0.618, 1.853),
    )


def second_trial(trial: Trial, folder: Path, stretch: float = SECOND_TRIAL_STRETCH) -> Trial:
    """The tests' second trial: ``trial`` slowed down ``stretch`` times (module doc)."""
    from train.opensim_io import read_storage, write_storage

    start = read_storage(trial.ik).time[0]

    def stretched(t):
        return start + stretch * (np.asarray(t) - start)

    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key in ("ik", "grf", "so_activation", "so_force"):
        source = getattr(trial, key)
        target = folder / f"slowed_{source.name}"
        if not target.is_file():
            storage = read_storage(source)
            write_storage(target, stretched(storage.time), storage.columns, storage.data,
                          in_degrees=storage.in_degrees)  # fmt: skip
        paths[key] = target
    loads = folder / f"slowed_{trial.loads.name}"
    loads.write_text(trial.loads.read_text().replace(trial.grf.name, paths["grf"].name))
    cycle = tuple(float(stretched(t)) for t in trial.cycle_s) if trial.cycle_s else None
    return replace(trial, name=f"{trial.name}_slowed", loads=loads,
                   span_s=tuple(float(stretched(t)) for t in trial.span_s), cycle_s=cycle,
                   **paths)  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """How hard every case trains: ``epochs`` the cap, ``patience`` train-fit's convergence
    rule (0 = train all epochs), ``seeds`` for the mean ± sd experiments, ``other_seeds``
    for the rest, ``tiny`` a small network (smoke test only)."""

    name: str
    epochs: int
    patience: int
    seeds: tuple[int, ...]
    other_seeds: tuple[int, ...]
    every_trial: bool
    tiny: bool = False


SETTINGS = {
    "full": Settings("full", 1000, 150, (0, 1, 2), (0, 1, 2), every_trial=True),
    "quick": Settings("quick", 40, 0, (0, 1, 2), (0,), every_trial=False),
    "smoke": Settings("smoke", 1, 0, (0,), (0,), every_trial=False, tiny=True),
}


@dataclass(frozen=True)
class Case:
    """One training run and its scores. ``speeds``: train on the trial time-warped by these
    cadence factors instead of the trial itself."""

    trial: str
    experiment: str
    mode: str = "pi"
    seed: int = 0
    muscles: str = "all"
    architecture: str = "mjca_bigru"
    weights: tuple[float, float, float] = FIXED_WEIGHTS
    loss_weighting: str = "fixed"
    balance: str = "auto"
    speeds: tuple[float, ...] = ()

    @property
    def name(self) -> str:
        w = "-".join(f"{v:g}" for v in self.weights)
        parts = [self.trial, self.mode, self.muscles, self.architecture, f"w{w}",
                 self.loss_weighting, self.balance]  # fmt: skip
        if self.speeds:
            parts.append("speeds" + "-".join(f"{s:g}" for s in self.speeds))
        return "_".join([*parts, f"s{self.seed}"])


def plan(trials: list[Trial], second: Trial | None, settings: Settings) -> list[Case]:
    """Every case of every experiment (module doc), shared cases listed once."""
    cases: dict[str, Case] = {}

    def add(case: Case) -> None:
        cases.setdefault(case.name, case)

    for trial in trials if settings.every_trial else trials[:1]:
        t = trial.name
        for seed in settings.seeds:
            add(Case(t, "pi_vs_supervised", seed=seed))
            add(Case(t, "pi_vs_supervised", mode="supervised", seed=seed))
            for weights in LOSS_ABLATION.values():
                add(Case(t, "loss_ablation", weights=weights, seed=seed))
            add(Case(t, "loss_ablation", loss_weighting="augmented_lagrangian", seed=seed))
        for seed in settings.other_seeds:
            for architecture in ("cnn_bigru", "bigru"):
                add(Case(t, "architecture", architecture=architecture, seed=seed))
            add(Case(t, "speed", speeds=SPEEDS, seed=seed))
            add(Case(t, "speed", mode="supervised", speeds=SPEEDS, seed=seed))
            add(Case(t, "muscle_sets", muscles="ten", seed=seed))
            add(Case(t, "balance", balance="sagittal", seed=seed))
    if second is not None:
        for seed in settings.seeds:
            for weighting in ("fixed", "augmented_lagrangian"):
                add(Case(second.name, "loss_weighting", loss_weighting=weighting, seed=seed))
    return list(cases.values())


# --- the cached steps ---------------------------------------------------------------------


@dataclass
class Workspace:
    """The cache folder and what is loaded once per run of the script."""

    out: Path
    settings: Settings
    trials: dict[str, Trial]
    log: Path = field(init=False)
    _subjects: dict = field(default_factory=dict)
    _legs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self.log = self.out / "log.txt"

    @contextlib.contextmanager
    def quiet(self):
        """The package's own printing goes to OUT/log.txt; the progress bar stays clean."""
        with self.log.open("a") as log, contextlib.redirect_stdout(log), \
                contextlib.redirect_stderr(log):  # fmt: skip
            yield

    def subject_path(self, trial: Trial, muscles: str) -> Path:
        """calib-subject --osim with ``--muscles all`` (the 43) or ``paper`` (the ten), once
        per model file."""
        from calib import cli as calib_cli

        path = self.out / "subjects" / f"{trial.osim.stem}_{muscles}.json"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            args = ["--osim", str(trial.osim), "-o", str(path), "--quiet"]
            args += ["--muscles", "all" if muscles == "all" else "paper"]
            with self.quiet():
                if calib_cli.main(args) != 0:
                    raise SystemExit(f"reproduce_paper: calib-subject {shlex.join(args)} failed")
        return path

    def subject(self, trial: Trial, muscles: str):
        from calib.subject import load_subject

        key = (trial.osim, muscles)
        if key not in self._subjects:
            self._subjects[key] = load_subject(self.subject_path(trial, muscles))
        return self._subjects[key]

    def legs(self, trial: Trial, muscles: str):
        """Both legs of the trial at 100 Hz (``train.fit.load_trials``)."""
        from train.dataset import load_trials
        from train.fit_config import TrialFiles

        key = (trial.name, muscles)
        if key not in self._legs:
            files = [TrialFiles(trial.ik, trial.grf, trial.loads)]
            self._legs[key] = load_trials(files, self.subject(trial, muscles), 100.0)[0]
        return self._legs[key]

    def run_dir(self, case: Case) -> Path:
        return self.out / "runs" / case.name


def warped_legs(legs, speeds: tuple[float, ...], seed: int, subject):
    """Each leg time-warped by each cadence factor (``train.augment``, module doc)."""
    from train.augment import AugmentConfig, augment_trials

    warped = []
    for speed in speeds:
        config = AugmentConfig(speed_range=(speed, speed), amplitude_range=(1.0, 1.0),
                               offset_rad=0.0, cycles_per_variant=2, cycle_speed_jitter=0.0,
                               cycle_amplitude_jitter=0.0)  # fmt: skip
        warped.extend(augment_trials(list(legs), 1, seed, subject, config))
    return warped


def static_optimization_labels(legs, subject):
    """``train.static_optimization`` of each leg as a labels storage (left legs' columns
    named ``..._l``, as ``train.windows.labels_for_windows`` reads them)."""
    from train.opensim_io import Storage
    from train.static_optimization import static_optimization

    storages = []
    for leg in legs:
        result = static_optimization(subject, leg)
        names = [n[:-2] + "_l" if leg.side == "l" and n.endswith("_r") else n
                 for n in subject.muscle_names]  # fmt: skip
        origin = f"static optimisation of {leg.variant} {leg.side}"
        storages.append(Storage(result.time, tuple(names), result.activation, False,
                                path=origin))  # fmt: skip
    return storages


def train_case(space: Workspace, case: Case) -> Path:
    """The case's run: reused when finished, continued from its checkpoint when killed."""
    from train.checkpoints import InterruptCheckpoint
    from train.fit import fit
    from train.fit_config import TrainingConfig
    from train.model import ModelConfig
    from train.opensim_io import read_storage
    from train.run import CHECKPOINT_FILE

    run = space.run_dir(case)
    if (run / "weights.pt").is_file() and (run / "metrics.json").is_file():
        return run
    trial = space.trials[case.trial]
    subject = space.subject(trial, case.muscles)
    legs = space.legs(trial, case.muscles)
    labels = [read_storage(trial.so_activation)] * len(legs)
    if case.speeds:
        legs = warped_legs(legs, case.speeds, case.seed, subject)
        labels = static_optimization_labels(legs, subject) if case.mode == "supervised" else None
    model = {"n_muscles": len(subject.muscles), "architecture": case.architecture}
    model.update(TINY_NETWORK if space.settings.tiny else {})
    w_d, w_p, w_b = case.weights
    config = TrainingConfig(
        mode=case.mode, epochs=space.settings.epochs, patience=space.settings.patience,
        seed=case.seed, balance=case.balance, loss_weighting=case.loss_weighting,
        weight_dynamics=w_d, weight_effort=w_p, weight_bounds=w_b,
    )  # fmt: skip
    resume = (run / CHECKPOINT_FILE).is_file()
    with space.quiet(), InterruptCheckpoint() as interrupt:
        fit(subject, legs, run, ModelConfig.from_dict(model), config, label_storages=labels,
            resume=resume, progress=False, overwrite=not resume, interrupt=interrupt)  # fmt: skip
    return run


def held_out_start(space: Workspace, trial: Trial) -> float:
    """The time of the first held-out window of the right leg (``train.fit.split_by_time``)."""
    from train.windows import WindowConfig, window_ends

    leg = space.legs(trial, "all")[0]
    ends = window_ends(leg.n_samples, WindowConfig())
    return float(leg.time[ends[ends.size - round(HELD_OUT_FRACTION * ends.size)]])


def evaluate_run(run: Path, trial: Trial, span: tuple[float, float], muscles: str = "paper"):
    """``train-eval RUN --ik IK --labels SO --forces SO --muscles paper`` on ``span``."""
    from calib import PAPER_MUSCLES
    from train.cli.evaluate import _parser
    from train.evaluate import evaluate

    args = _parser().parse_args([
        str(run), "--ik", str(trial.ik), "--labels", str(trial.so_activation),
        "--forces", str(trial.so_force), "--start", f"{span[0]:.6f}", "--end", f"{span[1]:.6f}",
        "--muscles", ",".join(PAPER_MUSCLES) if muscles == "paper" else muscles,
    ])  # fmt: skip
    return evaluate(args)


def score_case(space: Workspace, case: Case, span_name: str, span: tuple[float, float]) -> dict:
    """Scores of the case on ``span`` (cached JSON: ``train.evaluate.to_json`` plus the
    aligned series of activation and force)."""
    from train.evaluate import to_json

    path = space.out / "scores" / f"{case.name}_{span_name}.json"
    if path.is_file():
        return json.loads(path.read_text())
    trial = space.trials[case.trial]
    with space.quiet():
        evaluation = evaluate_run(space.run_dir(case), trial, span)
    data = to_json(evaluation)
    data["series"] = {
        c.quantity: {"time": c.series.time.tolist(), "reference": c.series.reference.tolist(),
                     "prediction": c.series.prediction.tolist()}
        for c in evaluation.comparisons
    }  # fmt: skip
    data["training"] = json.loads((space.run_dir(case) / "metrics.json").read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return data


def static_optimization_scores(space: Workspace, trial: Trial, muscles: str, balance: str) -> dict:
    """``train-so`` then ``train-eval --predictions`` against OpenSim, cached."""
    from train.cli import evaluate as eval_cli
    from train.cli import so as so_cli
    from train.opensim_io import read_storage

    prefix = space.out / "so" / f"{trial.name}_{muscles}_{balance}"
    scores = Path(f"{prefix}_scores.json")
    if scores.is_file():
        return json.loads(scores.read_text())
    prefix.parent.mkdir(parents=True, exist_ok=True)
    so_args = ["--ik", str(trial.ik), "--grf", str(trial.grf), "--loads", str(trial.loads),
               "--subject", str(space.subject_path(trial, muscles)), "-o", str(prefix),
               "--quiet"] + (["--sagittal"] if balance == "sagittal" else [])  # fmt: skip
    from calib import PAPER_MUSCLES

    eval_args = ["--predictions", str(prefix), "--labels", str(trial.so_activation),
                 "--forces", str(trial.so_force), "--muscles", ",".join(PAPER_MUSCLES),
                 "--start", str(trial.span_s[0]), "--end", str(trial.span_s[1]),
                 "--json", str(scores)]  # fmt: skip
    with space.quiet():
        if so_cli.main(so_args) != 0 or eval_cli.main(eval_args) != 0:
            raise SystemExit(f"reproduce_paper: train-so / train-eval failed for {prefix}")
    data = json.loads(scores.read_text())
    residual = read_storage(f"{prefix}_residual.sto")
    inside = (residual.time >= trial.span_s[0] - 1e-6) & (residual.time <= trial.span_s[1] + 1e-6)
    data["residual_max_abs_nm"] = dict(
        zip(residual.columns, np.abs(residual.data[inside]).max(axis=0).round(2).tolist())
    )
    scores.write_text(json.dumps(data))
    return data


# --- analysis -----------------------------------------------------------------------------


def muscle_values(scores: list[dict], quantity: str, metric: str) -> np.ndarray:
    """(seeds, muscles) of one metric, NaN where undefined (train.metrics' rule)."""
    return np.array([
        [np.nan if v[metric] is None else v[metric] for v in s[quantity]["per_muscle"].values()]
        for s in scores
    ], dtype=float)  # fmt: skip


def mean_sd(values: np.ndarray) -> str:
    """Mean ± sd over every defined (seed, muscle) value, as the paper's Table II."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "-"
    return f"{finite.mean():.2f} ± {finite.std(ddof=1) if finite.size > 1 else 0.0:.2f}"


def summary_row(scores: list[dict]) -> list[str]:
    return [mean_sd(muscle_values(scores, q, m)) for q in ("activation", "force")
            for m in ("r2", "nrmse")]  # fmt: skip


def seconds_per_epoch(scores: list[dict]) -> float:
    """Mean training time per epoch (s) of the runs behind ``scores``."""
    return float(np.mean([s["training"]["training_seconds"] / s["training"]["epochs"]
                          for s in scores]))  # fmt: skip


def training_row(scores: list[dict]) -> tuple[str, str, str]:
    """Mean training time (s), s per epoch, and share of the required torque balanced."""
    seconds = np.array([s["training"]["training_seconds"] for s in scores])
    part = "validation" if "validation" in scores[0]["training"] else "train"
    share = [s["training"][part]["torque_balance"]["all"]["balanced_share"] for s in scores]
    return f"{seconds.mean():.0f}", f"{seconds_per_epoch(scores):.2f}", f"{np.mean(share):.3f}"


def paired_tests(pi: list[dict], supervised: list[dict], quantity: str) -> dict[str, tuple]:
    """Per muscle: Wilcoxon signed-rank of |PI - reference| against |supervised - reference|
    over the scored frames (each model's error averaged over its seeds): (p, median error
    PI, median error supervised)."""
    from scipy.stats import wilcoxon

    def errors(scores):
        return np.mean([np.abs(np.array(s["series"][quantity]["prediction"])
                               - np.array(s["series"][quantity]["reference"]))
                        for s in scores], axis=0)  # fmt: skip

    a, b = errors(pi), errors(supervised)
    muscles = list(pi[0][quantity]["per_muscle"])
    return {m: (float(wilcoxon(a[:, j], b[:, j]).pvalue), float(np.median(a[:, j])),
                float(np.median(b[:, j]))) for j, m in enumerate(muscles)}  # fmt: skip


def representations(run: Path, legs, subject) -> tuple[np.ndarray, np.ndarray]:
    """What the prediction head reads (the BiGRU's last step, 2 Dg) and the predicted
    activations, on every window of ``legs``."""
    import torch

    from train.run import load_run
    from train.windows import WindowConfig, build_windows

    trained = load_run(run)
    config = trained.model.config
    windows = build_windows(list(legs), subject, WindowConfig(
        window=config.window, input_coordinates=config.input_coordinates))  # fmt: skip
    captured = []
    hook = trained.model.head.register_forward_hook(lambda m, i, o: captured.append(i[0]))
    with torch.no_grad():
        activation = trained.model(torch.as_tensor(windows.inputs)).numpy()
    hook.remove()
    return captured[0].numpy(), activation


def tsne_similarity(space: Workspace, pi: Case, supervised: Case, figure: Path) -> dict | None:
    """t-SNE of both models' representations, Procrustes similarity, Fig. 8-like figure."""
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from scipy.spatial import procrustes

    from calib import PAPER_MUSCLES

    trial = space.trials[pi.trial]
    subject = space.subject(trial, "all")
    legs = space.legs(trial, "all")
    embeddings, colour = {}, None
    for label, case in (("PI-MJCA-BiGRU", pi), ("MJCA-BiGRU (supervised)", supervised)):
        features, activation = representations(space.run_dir(case), legs, subject)
        embeddings[label] = TSNE(2, perplexity=30, init="pca", random_state=0).fit_transform(
            features
        )
        if colour is None:
            paper = [subject.muscle_names.index(m) for m in PAPER_MUSCLES]
            colour = activation[:, paper].mean(axis=1)
    first, second = embeddings.values()
    _, _, disparity = procrustes(first, second)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for axis, (label, points) in zip(axes, embeddings.items()):
        shown = axis.scatter(points[:, 0], points[:, 1], c=colour, s=8, cmap="viridis")
        axis.set_title(label)
        axis.set_xticks([])
        axis.set_yticks([])
    fig.colorbar(shown, ax=axes, label="PI mean activation of the ten muscles")
    fig.suptitle(f"t-SNE of the head's input, {len(first)} windows (both legs); "
                 f"Procrustes similarity {1 - disparity:.3f}")  # fmt: skip
    fig.savefig(figure, dpi=110)
    plt.close(fig)
    return {"procrustes_similarity": 1.0 - float(disparity), "windows": len(first)}


def box_figure(pi: list[dict], supervised: list[dict], path: Path) -> None:
    """Fig. 5: per muscle, the PI and supervised models' R² and NRMSE over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    muscles = list(pi[0]["activation"]["per_muscle"])
    labels = [paper_label(m) for m in muscles]
    fig, axes = plt.subplots(2, 2, figsize=(12, 7))
    panels = [("activation", "r2", "activation R²"), ("force", "r2", "force R²"),
              ("activation", "nrmse", "activation NRMSE"),
              ("force", "nrmse", "force NRMSE")]  # fmt: skip
    x = np.arange(len(muscles))
    for axis, (quantity, metric, title) in zip(axes.flat, panels):
        models = ((-0.18, pi, "tab:red", "PI-MJCA-BiGRU"),
                  (0.18, supervised, "tab:blue", "MJCA-BiGRU"))  # fmt: skip
        for offset, scores, colour, name in models:
            values = muscle_values(scores, quantity, metric)
            columns = [v[np.isfinite(v)] for v in values.T]
            keep = [j for j, c in enumerate(columns) if c.size]
            parts = axis.boxplot([columns[j] for j in keep], positions=x[keep] + offset,
                                 widths=0.3, patch_artist=True, manage_ticks=False)  # fmt: skip
            for box in parts["boxes"]:
                box.set_facecolor(colour)
                box.set_alpha(0.5)
            axis.plot([], [], color=colour, linewidth=6, alpha=0.5, label=name)
        axis.set_xticks(x, labels)
        axis.set_title(title)
        axis.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def bar_figure(rows: dict[str, list[dict]], path: Path, title: str) -> None:
    """Fig. 9: mean R² (± sd over muscles x seeds) of activation and force per variant."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for axis, quantity in zip(axes, ("activation", "force")):
        means, sds = [], []
        for scores in rows.values():
            v = muscle_values(scores, quantity, "r2")
            v = v[np.isfinite(v)]
            means.append(v.mean())
            sds.append(v.std(ddof=1) if v.size > 1 else 0.0)
        axis.bar(list(rows), means, yerr=sds, capsize=4, color="tab:gray")
        axis.set_title(f"{quantity} R²")
        axis.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- the report ---------------------------------------------------------------------------


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def report(space: Workspace, cases: list[Case], trials: list[Trial], second: Trial | None,
           command: str, seconds: float, figures: Path, report_path: Path) -> str:  # fmt: skip

    settings = space.settings
    figures.mkdir(parents=True, exist_ok=True)
    link = figures.relative_to(report_path.parent) if figures.is_relative_to(
        report_path.parent) else figures  # fmt: skip

    def scores_of(span="span", **match) -> list[dict]:
        chosen = [c for c in cases if all(getattr(c, k) == v for k, v in match.items())]
        return [score_case(space, c, span, span_of(c, span)) for c in chosen]

    def span_of(case: Case, span: str) -> tuple[float, float]:
        trial = space.trials[case.trial]
        return trial.span_s if span == "span" else (held_out_start(space, trial), trial.span_s[1])

    trial = trials[0]
    t = trial.name
    n_seeds = len(settings.seeds)
    full = {"trial": t, "mode": "pi", "muscles": "all", "architecture": "mjca_bigru",
            "weights": FIXED_WEIGHTS, "loss_weighting": "fixed", "balance": "auto",
            "speeds": ()}  # fmt: skip
    epochs_run = [json.loads((space.run_dir(c) / "metrics.json").read_text())["epochs"]
                  for c in cases]  # fmt: skip
    out = [
        "# Reproducing the paper's experiments",
        "",
        f"Written by `scripts/reproduce_paper.py`. Command: `{command}`.",
        "",
        f"- **Setting: {settings.name}** — "
        + {
            "quick": f"{settings.epochs} epochs per run without the convergence rule (the "
            "cosine schedule spans them), "
            f"{n_seeds} seeds (0-{n_seeds - 1}) for the PI-vs-supervised comparison and the "
            "loss ablation, one seed (0) for the other experiments, on the first trial only. "
            "Train-fit's default (the convergence rule, up to 1000 epochs) stops near epoch "
            "400 on this trial, so every figure below is of **under-trained** networks; the "
            "full run is `python scripts/reproduce_paper.py` (every experiment with three "
            "seeds, train-fit's defaults).",
            "full": "train-fit's defaults (up to 1000 epochs, stopped by the convergence rule), "
            "three seeds for every experiment, every trial.",
            "smoke": "one epoch of a tiny network, one seed: a check of the pipeline only; the "
            "figures mean nothing.",
        }[settings.name],
        f"- **Data**: {', '.join(f'`{tr.name}` ({tr.ik.name})' for tr in trials)}"
        + (
            f"; the tests' second trial `{second.name}` (the walk slowed "
            f"{SECOND_TRIAL_STRETCH}x on a stretched time axis) for the weighting comparison"
            if second
            else ""
        )
        + ". Reference: OpenSim 4.6's static optimisation of the trial (92 muscles), scored on "
        f"the paper's ten muscles over {trial.span_s[0]}-{trial.span_s[1]} s.",
        (
            "- **Models**: 43 right-leg muscles of gait2392 modelled (the ten reported), both legs "
            "of the trial train, 80/20 split by time (the last 20 % of each leg held out), the "
            "five-coordinate balance unless said otherwise, the paper's loss weights 3/1000/500."
        ),
        (
            f"- **Time**: {len(cases)} runs ({sum(epochs_run)} epochs) and their scoring took "
            f"{seconds / 60:.1f} min in this invocation of the script (cached cases cost nothing); "
            f"training alone {sum_training(space, cases) / 60:.1f} min, on "
            f"{platform.processor() or platform.machine()}, one thread per run"
            " (a 2-core machine shared with other jobs)."
        ),
        "",
        (
            "Scores follow `train-eval`'s rule: R² only where the reference varies by at least "
            "5 % of full scale (otherwise `-` and left out of the means), NRMSE and Pearson r "
            "everywhere. Whole-span scores are mostly of the frames the networks trained on (and "
            "the supervised network trained on the reference itself); the held-out rows are the "
            "fair comparison."
        ),
        "",
    ]

    headline_at = len(out)

    # 1. PI vs supervised
    pi = scores_of(**full)
    supervised = scores_of(**{**full, "mode": "supervised"})
    pi_held, supervised_held = scores_of("held_out", **full), scores_of(
        "held_out", **{**full, "mode": "supervised"})  # fmt: skip
    box_figure(pi, supervised, figures / "pi_vs_supervised.png")
    tests = {q: paired_tests(pi, supervised, q) for q in ("activation", "force")}
    muscles = list(pi[0]["activation"]["per_muscle"])
    rows = []
    for j, m in enumerate(muscles):
        row = [paper_label(m)]
        for quantity in ("activation", "force"):
            for scores in (pi, supervised):
                v = muscle_values(scores, quantity, "r2")[:, j]
                row.append("-" if not np.isfinite(v).any() else f"{np.nanmean(v):.2f}")
            for scores in (pi, supervised):
                row.append(f"{np.nanmean(muscle_values(scores, quantity, 'nrmse')[:, j]):.3f}")
            p, e_pi, e_s = tests[quantity][m]
            row.append(f"{p:.1e} ({'PI' if e_pi < e_s else 'S'})")
        rows.append(row)
    head = ["muscle"] + [f"{q} {x}" for q in ("act.", "force") for x in
                         ("R² PI", "R² S", "NRMSE PI", "NRMSE S", "p (lower error)")]  # fmt: skip
    out += [
        "## 1. PI-MJCA-BiGRU against the supervised MJCA-BiGRU (Fig. 5)",
        "",
        (
            f"Mean over {len(pi)} seed(s) per muscle, whole span. p: Wilcoxon signed-rank test of "
            "the two models' absolute errors frame by frame (each averaged over seeds; "
            f"{len(pi[0]['series']['activation']['time'])} frames at the reference's 60 Hz, which "
            "are autocorrelated, so p overstates the evidence); in brackets the model with the "
            "lower median error."
        ),
        "",
        table(head, rows),
        "",
        table(
            ["model", "span", "activation R²", "activation NRMSE", "force R²", "force NRMSE"],
            [
                ["PI-MJCA-BiGRU", "whole", *summary_row(pi)],
                ["MJCA-BiGRU (supervised)", "whole", *summary_row(supervised)],
                ["PI-MJCA-BiGRU", "held-out last 20 %", *summary_row(pi_held)],
                ["MJCA-BiGRU (supervised)", "held-out last 20 %", *summary_row(supervised_held)],
                ["paper, PI (benchmark set)", "test 20 %", *PAPER_TABLE_II["all terms"]],
            ],
        ),
        "",
        f"![PI against supervised]({link}/pi_vs_supervised.png)",
        "",
    ]

    # 2. loss ablation and automatic weighting
    rows = []
    for name, weights in LOSS_ABLATION.items():
        scores = scores_of(**{**full, "weights": weights})
        rows.append([name, *summary_row(scores), *training_row(scores),
                     " / ".join(PAPER_TABLE_II[name][::2])])  # fmt: skip
    al = scores_of(**{**full, "loss_weighting": "augmented_lagrangian"})
    rows.append(["all terms, augmented Lagrangian", *summary_row(al), *training_row(al), "-"])
    out[headline_at:headline_at] = headline(pi, pi_held, supervised, supervised_held, al, second,
                                            scores_of)  # fmt: skip
    out += [
        "## 2. Loss ablation (Table II) and automatic loss weighting",
        "",
        (
            f"Mean ± sd over the ten muscles x {n_seeds} seeds, whole span. The network's output "
            "is clamped into [0.01, 1] (train.model's default), so without L_b the activations "
            "still stay inside the bounds; L_b then only stops the raw output drifting. "
            "Balanced: the share of the required torque the muscles supply on the held-out "
            "windows (train-fit's `balanced_share`)."
        ),
        "",
        table(
            [
                "loss",
                *SCORE_COLUMNS,
                *TRAINING_COLUMNS,
                "paper act. / force R²",
            ],
            rows,
        ),
        "",
    ]
    if second is not None:
        rows = []
        for tr in (trial, second):
            for weighting in ("fixed", "augmented_lagrangian"):
                scores = scores_of(**{**full, "trial": tr.name, "loss_weighting": weighting})
                if scores:
                    rows.append([tr.name, weighting, *summary_row(scores), *training_row(scores)])
        out += [
            (
                "Fixed weights against the augmented Lagrangian on the shared trial and on the "
                "tests' second trial (each trained and scored on its own trial):"
            ),
            "",
            table(
                [
                    "trial",
                    "weighting",
                    *SCORE_COLUMNS,
                    *TRAINING_COLUMNS,
                ],
                rows,
            ),
            "",
        ]

    # 3. architectures
    architectures = {}
    for architecture in ("mjca_bigru", "cnn_bigru", "bigru"):
        seeds = settings.seeds if architecture == "mjca_bigru" else settings.other_seeds
        chosen = scores_of(**{**full, "architecture": architecture})
        architectures[ARCHITECTURE_NAMES[architecture]] = chosen[: len(seeds)]
    bar_figure(architectures, figures / "architectures.png", "PI networks (Fig. 9)")
    out += [
        "## 3. Architectures (Fig. 9)",
        "",
        table(
            [
                "PI network",
                "seeds",
                *SCORE_COLUMNS,
                *TRAINING_COLUMNS,
            ],
            [
                [name, str(len(s)), *summary_row(s), *training_row(s)]
                for name, s in architectures.items()
            ],
        ),
        "",
        (
            "Paper (benchmark set): PI-MJCA-BiGRU activation R² 0.84, force 0.82, 5.5 % and 6.2 % "
            "above PI-CNN-BiGRU and PI-BiGRU-only."
        ),
        "",
        f"![architectures]({link}/architectures.png)",
        "",
    ]

    # 4. speed
    rows = []
    for label, match in (
        ("PI, trained on the recorded speed", full),
        ("supervised, trained on the recorded speed", {**full, "mode": "supervised"}),
        (f"PI, trained on x{SPEEDS[0]} and x{SPEEDS[1]} warps", {**full, "speeds": SPEEDS}),
        (f"supervised, trained on x{SPEEDS[0]} and x{SPEEDS[1]} warps (labels: our SO)",
         {**full, "mode": "supervised", "speeds": SPEEDS}),
    ):  # fmt: skip
        scores = scores_of(**match)[: len(settings.other_seeds)]
        rows.append([label, str(len(scores)), *summary_row(scores)])
    out += [
        "## 4. Generalisation across walking speed (after the paper's LOSO test, Fig. 7)",
        "",
        (
            f"Trained on the trial time-warped to cadence x{SPEEDS[0]} and x{SPEEDS[1]} "
            "(train.augment: two spliced gait cycles per leg, velocities x s, accelerations x s², "
            "the vertical ground reaction's dynamic part x s², nothing else varied), scored on the "
            "recorded speed, which these models never saw. The supervised model's labels for the "
            "warps are train.static_optimization's (OpenSim's exist only for the recorded speed). "
            "A warp is not another speed: real faster walking has longer steps, a shorter stance "
            "fraction and harder heel strikes. The first two rows, trained on the recorded speed "
            "(mostly on the scored frames themselves), are the ceiling."
        ),
        "",
        table(["model", "seeds", *SCORE_COLUMNS], rows),
        "",
    ]

    # 5. muscle sets and balance
    rows = []
    variants = (("43 muscles, five coordinates", "all", "auto"),
                ("ten muscles, five coordinates", "ten", "auto"),
                ("43 muscles, sagittal (the paper's)", "all", "sagittal"))  # fmt: skip
    for label, muscles_set, balance in variants:
        scores = scores_of(**{**full, "muscles": muscles_set, "balance": balance})
        scores = scores[: len(settings.other_seeds)]
        so_balance = "sagittal" if balance == "sagittal" else "five"
        so = static_optimization_scores(space, trial, muscles_set, so_balance)
        residual = max(so["residual_max_abs_nm"].values())
        rows.append([label, *summary_row(scores), *training_row(scores)[2:],
                     f"{so['activation']['mean']['r2']:.2f}", f"{so['force']['mean']['r2']:.2f}",
                     f"{residual:.1f}"])  # fmt: skip
    out += [
        "## 5. The ten paper muscles against the 43, five coordinates against the sagittal three",
        "",
        (
            "PI model and our static optimisation (`train-so`), both against OpenSim's, on the "
            "same ten muscles. The ten alone cannot supply the moments OpenSim shares among 92 "
            "muscles (largest torque `train-so` leaves unbalanced in the last column), which is "
            "why the package models every muscle crossing the joints and reports the ten."
        ),
        "",
        table(
            [
                "model",
                *SCORE_COLUMNS,
                "balanced",
                "train-so act. R²",
                "train-so force R²",
                "train-so max residual N m",
            ],
            rows,
        ),
        "",
    ]

    # 6. t-SNE
    seed = settings.seeds[0]
    similarity = tsne_similarity(space, Case(t, "pi_vs_supervised", seed=seed),
                                 Case(t, "pi_vs_supervised", mode="supervised", seed=seed),
                                 figures / "tsne.png")  # fmt: skip
    out += ["## 6. Learned representations (Table I, Fig. 8)", ""]
    if similarity is None:
        out += ["Skipped: scikit-learn is not installed (`pip install scikit-learn`).", ""]
    else:
        out += [
            (
                f"Procrustes similarity of the t-SNE embeddings (seed {seed}, "
                f"{similarity['windows']} windows of both legs): "
                f"**{similarity['procrustes_similarity']:.3f}** (paper: 0.889)."
            ),
            "",
            f"![t-SNE]({link}/tsne.png)",
            "",
        ]
    out += [
        "## Full run",
        "",
        (
            "`python scripts/reproduce_paper.py` trains "
            f"{len(plan(trials, second, SETTINGS['full']))} runs on {len(trials)} trial(s)"
            f"{SECOND_NOTE if second else ''}. At the {settings.name} setting's measured "
            f"{mean_seconds_per_epoch(space, cases):.2f} s per epoch (43 muscles, one thread) and "
            "about 400 epochs per run (where train-fit's rule stops on subject01), that is about "
            f"{estimate_full_hours(space, cases, trials, second):.1f} h on this CPU."
        ),
        "",
    ]
    return "\n".join(out)


def mean_of(scores: list[dict], quantity: str, metric: str = "r2") -> float:
    values = muscle_values(scores, quantity, metric)
    return float(np.mean(values[np.isfinite(values)]))


def headline(pi, pi_held, supervised, supervised_held, al, second, scores_of) -> list[str]:
    """The figures a reader wants first: ours beside the paper's, and what the automatic
    weighting changed (on every trial it ran on) and what it cost."""
    lines = [
        "## Headline",
        "",
        (
            f"- PI-MJCA-BiGRU, mean R² over the ten muscles and the seeds: activation "
            f"{mean_of(pi, 'activation'):.2f}, force {mean_of(pi, 'force'):.2f} on the whole span; "
            f"{mean_of(pi_held, 'activation'):.2f} and {mean_of(pi_held, 'force'):.2f} on the "
            "held-out last 20 % (paper, Table II: 0.84 ± 0.15 and 0.82 ± 0.18 on its test split "
            "of six subjects). The supervised MJCA-BiGRU: "
            f"{mean_of(supervised, 'activation'):.2f} and {mean_of(supervised, 'force'):.2f} "
            f"(held out {mean_of(supervised_held, 'activation'):.2f} and "
            f"{mean_of(supervised_held, 'force'):.2f})."
        ),
    ]
    comparisons = [("the shared trial", pi, al)]
    if second is not None:
        fixed_second = scores_of(trial=second.name, loss_weighting="fixed")
        al_second = scores_of(trial=second.name, loss_weighting="augmented_lagrangian")
        if fixed_second and al_second:
            comparisons.append(("the tests' second trial", fixed_second, al_second))
    for where, fixed, automatic in comparisons:
        cost = seconds_per_epoch(automatic) / seconds_per_epoch(fixed)
        lines.append(
            f"- Augmented Lagrangian against the fixed weights on {where}: activation R² "
            f"{mean_of(fixed, 'activation'):.3f} → {mean_of(automatic, 'activation'):.3f}, "
            f"force R² {mean_of(fixed, 'force'):.3f} → {mean_of(automatic, 'force'):.3f}, "
            f"torque balanced {training_row(fixed)[2]} → {training_row(automatic)[2]}, "
            f"time per epoch x{cost:.2f}."
        )
    return [*lines, ""]


def sum_training(space: Workspace, cases: list[Case]) -> float:
    return sum(json.loads((space.run_dir(c) / "metrics.json").read_text())["training_seconds"]
               for c in cases)  # fmt: skip


def mean_seconds_per_epoch(space: Workspace, cases: list[Case]) -> float:
    metrics = [json.loads((space.run_dir(c) / "metrics.json").read_text()) for c in cases]
    return float(np.mean([m["training_seconds"] / m["epochs"] for m in metrics]))


def estimate_full_hours(space, cases, trials, second) -> float:
    return (len(plan(trials, second, SETTINGS["full"])) * 400
            * mean_seconds_per_epoch(space, cases) / 3600)  # fmt: skip


# --- command line -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trials", nargs="*", type=Path, help="trial JSON files (module doc)")
    level = parser.add_mutually_exclusive_group()
    level.add_argument("--quick", action="store_true", help="40 epochs, fewer seeds, one trial")
    level.add_argument("--smoke", action="store_true", help="pipeline check in about a minute")
    parser.add_argument("--out", type=Path, default=Path("reproduce_paper"), help="cache folder")
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "results.md",
                        help="the report to write (figures beside it in results/)")  # fmt: skip
    parser.add_argument("--data", type=Path, default=DATA, help="the shared opensim-gait2392")
    args = parser.parse_args(argv)
    settings = SETTINGS["smoke" if args.smoke else "quick" if args.quick else "full"]
    trials = [Trial.from_json(p) for p in args.trials] or [shared_trial(args.data)]
    for trial in trials:
        if trial.missing():
            print(f"reproduce_paper: trial {trial.name}: missing {trial.missing()[0]}",
                  file=sys.stderr)  # fmt: skip
            return 2
    started = time.perf_counter()
    second = second_trial(trials[0], args.out / "trials")
    space = Workspace(args.out, settings, {t.name: t for t in [*trials, second]})
    cases = plan(trials, second, settings)
    (args.out / "plan.json").write_text(json.dumps([asdict(c) for c in cases], indent=1))
    for case in tqdm(cases, desc="reproduce_paper", unit="run", dynamic_ncols=True):
        tqdm.write(f"{case.name}")
        train_case(space, case)
    figures = args.report.parent / "results"
    command = shlex.join(["python", "scripts/reproduce_paper.py", *(argv or sys.argv[1:])])
    text = report(space, cases, trials, second, command, time.perf_counter() - started,
                  figures, args.report)  # fmt: skip
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(text + "\n")
    print(f"reproduce_paper: {args.report} and {figures}/ written "
          f"({(time.perf_counter() - started) / 60:.1f} min)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
