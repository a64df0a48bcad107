"""compare(): train several model variants on the same batches over a few seeds, and tabulate the losses.

An instructor's question "what does this layer buy us?" as one call:

    results = mtn.compare({"plain": lambda: mtn.mlp(), "batchnorm": lambda: mtn.mlp(batchnorm=True)},
                          mtn.names_dataset(3), steps=20_000)
    results            # the table: parameters, train/val/test as mean ± std over seeds, ms per step,
                       # and each variant's paired difference in val from the best, with its verdict
    results.paired("plain", "batchnorm")   # val(batchnorm) - val(plain) seed by seed: mean, SE, verdict
    results.plot()     # the smoothed training-loss curves, one per variant

The verdict is a paired t-test. For one seed every variant starts from the same generator state and
trains on the same batches, so what the seed does to one variant it largely does to the other: the
difference d_s = loss_b(s) - loss_a(s) cancels it, and its spread over seeds is far smaller than the
spread of either loss. "clear" means |mean d| > t * SE(d), SE(d) = stdev(d) / sqrt(n), with t Student's
two-sided 95% value for n - 1 degrees of freedom (12.71 for 2 seeds, 4.30 for 3): a difference of pure
noise is called clear 5% of the time whatever the number of seeds, where the rule |mean d| > 2 SE(d)
would call it clear 30% of the time with 2 seeds and 18% with 3.

With out_dir, every finished run is written to disk (its checkpoint, then its result.json), and a
second call with the same out_dir picks up where the first stopped.
"""
from __future__ import annotations

import csv
import io
import json
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from ..train.config import FIELDS, LECTURE_SGD, TrainConfig
from ..data.corpus import TokenCorpus
from ..data.names import NamesDataset
from ..fileio import write_atomic
from ..train.evaluation import LossTable
from ..nn.module import Module, inference
from ..train.loop import progress_enabled
from ..train.register import RegisterModel

VARIANT_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"  # names become folder names: no '/', no '..'


# Student's t: the two-sided 95% critical value for df degrees of freedom (df = seeds - 1)
T_CRITICAL_95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
                 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
                 18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060,
                 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042}


def t_critical(df: int) -> float:
    """Student's two-sided 95% critical value for df >= 1 degrees of freedom (df > 30: the value at 30,
    at most 4% above the true one, so the verdict errs towards "within noise")."""
    if not isinstance(df, int) or isinstance(df, bool) or df < 1:
        raise ValueError(f"t_critical expected df, the degrees of freedom, >= 1, got {df!r}")
    return T_CRITICAL_95[min(df, 30)]


@dataclass(frozen=True)
class PairedDifference:
    """How variant b differs from variant a, seed by seed: d_s = loss_b(s) - loss_a(s)."""

    differences: list[float]  # one per seed, in the seeds' order
    mean: float  # mean of d: below 0, b is lower (better)
    se: float  # standard error of that mean, stdev(d) / sqrt(n)
    threshold: float  # t_critical(n - 1) * se: |mean| above it is "clear"
    verdict: str  # "clear" or "within noise"

    def __str__(self) -> str:
        return f"{self.mean:+.4f} ± {self.se:.4f} {self.verdict}"


def paired_difference(losses_a, losses_b) -> PairedDifference:
    """The paired statistic over seeds: losses_a[s] and losses_b[s] come from the same seed (same batches).

    The verdict is "clear" when |mean d| > t_critical(n - 1) * SE(d), a paired t-test at 5%, else
    "within noise". It needs at least two seeds: one difference has no spread to compare it with.
    """
    a, b = [float(v) for v in losses_a], [float(v) for v in losses_b]
    if len(a) != len(b):
        raise ValueError(f"paired_difference needs one loss per seed for both variants, got {len(a)} and {len(b)}")
    if len(a) < 2:
        raise ValueError(f"paired_difference needs at least 2 seeds to measure the spread of d, got {len(a)}")
    differences = [lb - la for la, lb in zip(a, b)]
    n = len(differences)
    mean = statistics.mean(differences)
    se = statistics.stdev(differences) / n ** 0.5
    threshold = t_critical(n - 1) * se
    return PairedDifference(differences, mean, se, threshold, "clear" if abs(mean) > threshold else "within noise")


@dataclass
class Variant:
    """A model to compare: how to build it, and what differs in its data or training (block_size, lr, ...)."""

    build: Callable[[], Module]
    block_size: int | None = None
    train: dict = field(default_factory=dict)  # overrides of compare()'s TrainConfig (lr=..., ...)

    def __post_init__(self) -> None:
        if not isinstance(self.train, dict):
            raise TypeError(f"Variant: train must be a dict of training settings, got {self.train!r}")
        if "seed" in self.train:
            raise ValueError("Variant: train sets 'seed', which compare() sets for every run from its seeds; "
                             "give the seeds to compare(seeds=...)")
        known = [k for k in FIELDS if k != "seed"]
        unknown = sorted(set(self.train) - set(known))
        if unknown:
            raise ValueError(f"Variant: unknown training setting {', '.join(unknown)} in train; "
                             f"known: {', '.join(known)}")


def _as_variant(name: str, value) -> Variant:
    if isinstance(value, Variant):
        return value
    if callable(value) and not isinstance(value, Module):  # a built model is callable too, but used up by one seed
        return Variant(value)
    raise TypeError(f"compare: variant {name!r} must be a function that builds a model (each seed starts "
                    f"from a fresh one), or a Variant; got {type(value).__name__}")


class Comparison:
    """The runs of a comparison: one row per (variant, seed) and the training loss of every step."""

    def __init__(self, runs: list[dict], curves: dict[tuple[str, int], list[float]]) -> None:
        self.runs, self.curves = runs, curves

    @property
    def variants(self) -> list[str]:
        return list(dict.fromkeys(run["variant"] for run in self.runs))

    @property
    def splits(self) -> list[str]:
        return [s for s in ("train", "val", "test") if any(s in run for run in self.runs)]

    def values(self, variant: str, split: str) -> list[float]:
        """The loss of one split for every seed of a variant."""
        if variant not in self.variants:
            raise KeyError(f"no variant {variant!r}; the variants are {self.variants}")
        return [run[split] for run in self.runs if run["variant"] == variant]

    def mean(self, variant: str, split: str = "val") -> float:
        return statistics.mean(self.values(variant, split))

    def best(self, split: str = "val") -> str:
        """The variant with the lowest mean loss on split (the first of equals)."""
        return min(self.variants, key=lambda v: self.mean(v, split))

    def paired(self, a: str, b: str, split: str = "val") -> PairedDifference:
        """loss_b - loss_a on split, seed by seed (both variants ran every seed on the same batches)."""
        for v in (a, b):
            self.values(v, split)  # a KeyError naming an unknown variant
        by_seed = {v: {run["seed"]: run[split] for run in self.runs if run["variant"] == v} for v in (a, b)}
        seeds = list(by_seed[a])
        if sorted(seeds) != sorted(by_seed[b]):
            raise ValueError(f"{a!r} ran seeds {seeds} and {b!r} seeds {list(by_seed[b])}: a paired difference "
                             f"needs the same seeds")
        return paired_difference([by_seed[a][s] for s in seeds], [by_seed[b][s] for s in seeds])

    def table(self) -> LossTable:
        """One row per variant: parameters, mean ± std of every split over the seeds, ms per step; with two
        variants or more, the paired difference in val from the best variant, ± its SE, and the verdict."""
        rows = []
        judged = "val" if "val" in self.splits else self.splits[-1]  # the split the verdicts are on
        best = self.best(judged) if len(self.variants) > 1 else None
        for name in self.variants:
            runs = [run for run in self.runs if run["variant"] == name]
            row: dict = {"variant": name, "parameters": f"{runs[0]['parameters']:,}", "seeds": str(len(runs))}
            for split in self.splits:
                vals = [run[split] for run in runs]
                mean = f"{statistics.mean(vals):.4f}"
                row[split] = f"{mean} ± {statistics.stdev(vals):.4f}" if len(vals) > 1 else mean
            row["ms/step"] = f"{statistics.mean(run['ms_per_step'] for run in runs):.2f}"
            if best is not None:
                row[f"paired Δ{judged} ± SE"] = self._versus_best(name, best, judged)
            rows.append(row)
        return LossTable(rows)

    def _versus_best(self, name: str, best: str, split: str) -> str:
        if name == best:
            return "best"
        if len(self.values(name, split)) < 2:  # one seed: a difference, but no spread to judge it by
            return f"{self.mean(name, split) - self.mean(best, split):+.4f} (1 seed)"
        return str(self.paired(best, name, split))

    def __repr__(self) -> str:
        return repr(self.table())

    def to_markdown(self) -> str:
        return self.table().to_markdown()

    def _repr_markdown_(self) -> str:  # Jupyter renders the table
        return self.to_markdown()

    def to_csv(self, path: str | Path | None = None) -> str:
        """Every run as a CSV row (variant, seed, parameters, losses, ms_per_step); written to path if given."""
        columns = ["variant", "seed", "parameters", *self.splits, "ms_per_step", "steps"]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.runs)
        if path is not None:
            write_atomic(Path(path), buffer.getvalue())
        return buffer.getvalue()

    def to_json(self, path: str | Path | None = None) -> str:
        """Runs and loss curves as JSON; written to path if given."""
        text = json.dumps({"runs": self.runs,
                           "curves": [{"variant": v, "seed": s, "loss": c} for (v, s), c in self.curves.items()]})
        if path is not None:
            write_atomic(Path(path), text)
        return text

    def plot(self, ax=None, window: int | None = None):
        """The training loss of each variant (mean over seeds), averaged over windows of steps."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(8, 4))
        for name in self.variants:
            curves = [torch.tensor(c) for (v, _), c in self.curves.items() if v == name]
            length = min(len(c) for c in curves)
            mean = torch.stack([c[:length] for c in curves]).mean(0)
            k = window or max(1, length // 100)
            n = length // k * k
            smooth = mean[:n].view(-1, k).mean(1)
            ax.plot(torch.arange(len(smooth)) * k + k / 2, smooth, label=f"{name} ({len(curves)} seeds)")
        ax.set_xlabel("step")
        ax.set_ylabel("training loss (window mean)")
        ax.legend()
        return ax


def _train_one(name: str, variant: Variant, dataset, seed: int, config: TrainConfig,
               device) -> tuple[RegisterModel, dict]:
    """Build and train one variant with one seed; the seed fixes both the weights and the batches."""
    torch.manual_seed(seed)
    model = _build(name, variant)
    reg = RegisterModel(model, name, f"seed {seed}", device=device, verbose=False)
    config = config.replace(seed=seed)
    if isinstance(dataset, TokenCorpus):
        run = reg.train_text(dataset, config, block_size=variant.block_size, log=False, progress=False)
        _, train_loss, val_loss = run["eval"][-1]  # estimate_loss at the last step
        losses = {"train": train_loss, "val": val_loss}
    else:
        data = dataset.with_block_size(variant.block_size) if variant.block_size else dataset
        run = reg.train(*data["train"], config, progress=False)
        losses = reg.split_losses(data).rows[0]
    result = {"seed": seed, "parameters": reg.n_parameters,
              **{k: losses[k] for k in ("train", "val", "test") if k in losses},
              "ms_per_step": 1000 * run["seconds"] / config.steps, "steps": config.steps}
    return reg, {**result, "loss": run["loss"]}


def _build(name: str, variant: Variant) -> Module:
    model = variant.build()
    if not isinstance(model, Module):
        raise TypeError(f"variant {name!r}: its build function must return a minitorchnn Module, "
                        f"got {type(model).__name__}")
    return model


def _dry_run(name: str, variant: Variant, dataset) -> None:
    """Build the variant and run it on one small batch, so that a shape or vocabulary mistake names the
    variant before the grid starts, not an hour into it."""
    x, y, vocab_size = _one_batch(name, variant, dataset)
    with torch.random.fork_rng(devices=[]):  # building draws random weights: leave the global generator as it was
        model = _build(name, variant)
        try:
            with inference(model):
                logits = model(x)
        except (ValueError, TypeError, IndexError, RuntimeError) as err:
            raise ValueError(f"variant {name!r} fails on one batch of the data {tuple(x.shape)}: {err}") from None
    if logits.shape[-1] != vocab_size:
        raise ValueError(f"variant {name!r} predicts {logits.shape[-1]} classes, but the data has a vocabulary "
                         f"of {vocab_size}: build it with vocab_size={vocab_size}")
    if logits.shape[:-1] != y.shape:
        kind = "text windows: one prediction per position" if y.ndim == 2 else "names contexts: one prediction each"
        raise ValueError(f"variant {name!r} gives logits of shape {tuple(logits.shape)} for a batch of "
                         f"{tuple(x.shape)}, but the data's targets are {tuple(y.shape)} ({kind}); a sequence "
                         f"model such as GPT reads text, the names models read names")


def _one_batch(name: str, variant: Variant, dataset):
    """Two examples of the data as this variant reads them: inputs, targets and the vocabulary size."""
    if isinstance(dataset, TokenCorpus):
        if variant.block_size is None:
            raise ValueError(f"variant {name!r}: compare on a text corpus needs the Variant's block_size")
        x, y = dataset.get_batch("train", 2, variant.block_size, generator=torch.Generator().manual_seed(0))
        return x, y, dataset.vocab_size
    data = dataset.with_block_size(variant.block_size) if variant.block_size else dataset
    return data["train"][0][:2], data["train"][1][:2], len(dataset.vocab)


@dataclass(frozen=True)
class RunFolder:
    """Where compare() keeps its runs, and what defines the experiment they belong to (checked on reuse)."""

    path: Path
    identity: dict = field(default_factory=dict)


def compare(variants: dict, dataset: NamesDataset | TokenCorpus, seeds=(0, 1, 2), *, config: TrainConfig | None = None,
            device=None, out_dir: str | Path | RunFolder | None = None, progress: bool | None = None,
            **settings) -> Comparison:
    """Train every variant with every seed and return the Comparison.

    Training settings come as a TrainConfig and/or its fields by name (steps=..., lr=..., schedule=...); a
    Variant's own `train` dict overrides them for that variant. For one seed, every variant starts
    from torch.manual_seed(seed) and draws the same minibatches (same indices, and the same examples
    for any block_size). On a NamesDataset the losses are over whole splits; on a text corpus,
    estimate_loss over eval_iters batches (train and val only). Every variant is first run on one
    batch, so a broken one is named before anything trains. With out_dir, each finished run is saved as
    out_dir/runs/VARIANT/seed-N/{checkpoint.pt, result.json}, finished runs are not trained again, and
    what defines the experiment (a RunFolder's identity) must match the one stored there.
    """
    seeds = _checked_seeds(variants, seeds)
    base = (config or LECTURE_SGD).replace(**settings)
    table = {name: _as_variant(name, value) for name, value in variants.items()}
    configs = {name: _variant_config(name, variant, base) for name, variant in table.items()}
    for name, variant in table.items():
        _dry_run(name, variant, dataset)
    folder = _claim(out_dir, table, base, seeds) if out_dir is not None else None
    grid = [(name, seed) for seed in seeds for name in table]
    runs, curves = [], {}
    for name, seed in tqdm(grid, desc="compare", disable=not progress_enabled(progress, 1000 * len(grid)), leave=False):
        result = _run(name, table[name], dataset, seed, configs[name], device, folder)
        curves[name, seed] = result.pop("loss")
        runs.append(result)
    comparison = Comparison(runs, curves)
    if folder is not None:
        comparison.to_csv(folder / "results.csv")
        comparison.to_json(folder / "results.json")
        write_atomic(folder / "results.md", comparison.to_markdown() + "\n")
    return comparison


def _checked_seeds(variants: dict, seeds) -> tuple[int, ...]:
    if not variants:
        raise ValueError("compare needs at least one variant")
    seeds = tuple(seeds)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"compare needs at least one integer seed, got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"compare got the same seed twice in {list(seeds)}: a repeated seed repeats a run and "
                         f"makes the spread over seeds look smaller than it is")
    return seeds


def _variant_config(name: str, variant: Variant, base: TrainConfig) -> TrainConfig:
    try:
        return base.replace(**variant.train)
    except ValueError as err:
        raise ValueError(f"variant {name!r}: {err}") from None


def _claim(out_dir: str | Path | RunFolder, table: dict, base: TrainConfig, seeds: tuple[int, ...]) -> Path:
    """The run folder, made ours: variant names become folder names, and the experiment must be this one."""
    bad = [name for name in table if not re.fullmatch(VARIANT_NAME, name)]
    if bad:
        raise ValueError(f"variant names become folder names: use letters, digits, '.', '_' and '-', got {bad}")
    run_folder = out_dir if isinstance(out_dir, RunFolder) else RunFolder(Path(out_dir))
    stored = {"variants": list(table), "steps": base.steps, "seeds": list(seeds),
              **{k: _plain(v) for k, v in vars(base).items() if k not in ("steps", "seed")}, **run_folder.identity}
    _claim_folder(Path(run_folder.path), stored)
    return Path(run_folder.path)


def _run(name: str, variant: Variant, dataset, seed: int, config: TrainConfig, device, folder: Path | None) -> dict:
    """One (variant, seed) run: read back if a run folder holds it finished, else trained (and saved there)."""
    done = folder / "runs" / name / f"seed-{seed}" if folder is not None else None
    if done is not None and (done / "result.json").exists():  # finished before: read, don't retrain
        return _read_result(done / "result.json", name, seed)
    reg, result = _train_one(name, variant, dataset, seed, config, device)
    result = {"variant": name, **result}
    if done is not None:
        done.mkdir(parents=True, exist_ok=True)
        reg.save(done / "checkpoint.pt")
        write_atomic(done / "result.json", json.dumps(result))  # last: marks the run finished
    return result


def _claim_folder(out_dir: Path, identity: dict) -> None:
    """Make out_dir ours: store what defines the experiment, or check it is what is stored there."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stored_path = out_dir / "experiment.json"
    current = _plain(identity)  # as JSON would give it back (tuples become lists)
    if stored_path.exists():
        stored = _read_json(stored_path)
        if not isinstance(stored, dict):
            raise ValueError(f"{stored_path}: damaged (not a JSON object); delete {out_dir} to start over")
        if stored != current:
            changed = sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k))
            raise ValueError(f"{out_dir} holds runs of a different experiment (settings that differ: {changed}); "
                             f"use another output folder, or delete this one to start over")
    else:
        write_atomic(stored_path, json.dumps(current, indent=2))


RESULT_KEYS = ("variant", "seed", "parameters", "ms_per_step", "steps", "loss")


def _read_json(path: Path):
    """A JSON file of a run folder; damage is a ValueError naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: damaged, not JSON ({err}); delete it to train that run again") from None


def _read_result(path: Path, name: str, seed: int) -> dict:
    """A finished run's result.json, checked: damage names the file (delete it to train the run again)."""
    result = _read_json(path)
    missing = [k for k in RESULT_KEYS if not isinstance(result, dict) or k not in result]
    if missing:
        raise ValueError(f"{path}: damaged, it lacks {missing}; delete it to train that run again")
    if (result["variant"], result["seed"]) != (name, seed) or not isinstance(result["loss"], list):
        raise ValueError(f"{path}: damaged, it is not the result of {name!r} seed {seed}; delete it to train "
                         f"that run again")
    return result


def _plain(value):
    """A JSON-friendly stand-in for a setting (tuples become lists, a schedule function its name)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return getattr(value, "__name__", type(value).__name__)
