import csv
import io
import json
import math
import re
import statistics

import pytest
import torch

import minitorchnn as mtn
from minitorchnn.lab import comparison as compare_module
from minitorchnn.nn.module import Module

STEPS = 30


class Recorder(Module):
    """Identity layer that keeps every input it sees (to check which batches a variant trained on)."""

    def __init__(self, log: list) -> None:
        self.log = log

    def forward(self, x):
        if self.training:
            self.log.append(x.clone())
        return x


def two_variants():
    return {"plain": lambda: mtn.mlp(), "batchnorm": lambda: mtn.mlp(batchnorm=True)}


def test_same_seeds_give_the_same_table_twice(names3):
    first = mtn.compare(two_variants(), names3, steps=STEPS, seeds=(0, 1))
    second = mtn.compare(two_variants(), names3, steps=STEPS, seeds=(0, 1))
    strip = lambda runs: [{k: v for k, v in r.items() if k != "ms_per_step"} for r in runs]  # noqa: E731
    assert strip(first.runs) == strip(second.runs)
    assert first.curves == second.curves
    assert first.runs[0]["val"] != first.runs[2]["val"]  # seed 1 differs from seed 0


def test_every_variant_sees_the_same_batches_for_a_seed(names3):
    logs = {name: [] for name in ("a", "b")}
    variants = {name: (lambda log=log: mtn.Sequential([Recorder(log), *mtn.mlp().layers]))
                for name, log in logs.items()}
    mtn.compare(variants, names3, steps=5, seeds=(0,))
    assert len(logs["a"]) == 5 and all(torch.equal(x, y) for x, y in zip(logs["a"], logs["b"]))
    other = []
    mtn.compare({"c": lambda: mtn.Sequential([Recorder(other), *mtn.mlp().layers])}, names3, steps=5, seeds=(1,))
    assert not torch.equal(other[0], logs["a"][0])


def test_block_sizes_differ_but_the_examples_are_the_same(names3):
    logs = {3: [], 8: []}
    variants = {f"block{k}": mtn.Variant(lambda k=k: mtn.Sequential([Recorder(logs[k]), *mtn.mlp(block_size=k).layers]),
                                         block_size=k) for k in logs}
    results = mtn.compare(variants, names3, steps=3, seeds=(0,))
    assert logs[3][0].shape == (32, 3) and logs[8][0].shape == (32, 8)
    assert torch.equal(logs[8][0][:, -3:], logs[3][0])  # the same examples, with more context
    assert [r["parameters"] for r in results.runs] == [11_897, 21_897]


def test_table_csv_and_markdown_hold_the_runs(names3):
    results = mtn.compare(two_variants(), names3, steps=STEPS, seeds=(0, 1))
    vals = results.values("batchnorm", "val")
    assert len(vals) == 2 and results.mean("batchnorm") == pytest.approx(statistics.mean(vals))
    row = results.table().rows[1]
    assert row["variant"] == "batchnorm" and row["parameters"] == "12,097" and row["seeds"] == "2"
    assert row["val"] == f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals):.4f}"
    rows = list(csv.DictReader(io.StringIO(results.to_csv())))
    assert len(rows) == 4 and set(rows[0]) == {"variant", "seed", "parameters", "train", "val", "test",
                                               "ms_per_step", "steps"}
    assert float(rows[3]["val"]) == results.runs[3]["val"]
    markdown = results.to_markdown().splitlines()
    assert markdown[0].startswith("| variant | parameters | seeds | train | val | test | ms/step |")
    assert len(markdown) == 4 and "0x" not in repr(results)
    loaded = json.loads(results.to_json())
    assert len(loaded["curves"]) == 4 and len(loaded["curves"][0]["loss"]) == STEPS
    with pytest.raises(KeyError, match="no variant 'nope'; the variants are"):
        results.values("nope", "val")


def test_plot_overlays_one_curve_per_variant(names3):
    results = mtn.compare(two_variants(), names3, steps=STEPS, seeds=(0, 1))
    ax = results.plot(window=5)
    assert [line.get_label() for line in ax.lines] == ["plain (2 seeds)", "batchnorm (2 seeds)"]
    expected = torch.tensor([results.curves["plain", s] for s in (0, 1)]).mean(0).view(-1, 5).mean(1)
    assert torch.allclose(torch.tensor(ax.lines[0].get_ydata(), dtype=torch.float32), expected, atol=1e-6)


def test_resume_after_an_interruption_finishes_the_grid_without_redoing_runs(names3, tmp_path, monkeypatch):
    reference = mtn.compare(two_variants(), names3, steps=STEPS, seeds=(0, 1), out_dir=tmp_path / "reference")
    real, trained = compare_module._train_one, []

    def interrupted_after_three(name, variant, dataset, seed, *args):
        if len(trained) == 3:
            raise KeyboardInterrupt  # as if Ctrl-C came during the fourth run
        trained.append((name, seed))
        return real(name, variant, dataset, seed, *args)

    monkeypatch.setattr(compare_module, "_train_one", interrupted_after_three)
    with pytest.raises(KeyboardInterrupt):
        mtn.compare(two_variants(), names3, steps=STEPS, seeds=(0, 1), out_dir=tmp_path / "run")
    assert len(list((tmp_path / "run").glob("runs/*/*/result.json"))) == 3
    assert not (tmp_path / "run" / "results.csv").exists()

    def counting(name, variant, dataset, seed, *args):
        trained.append((name, seed))
        return real(name, variant, dataset, seed, *args)

    monkeypatch.setattr(compare_module, "_train_one", counting)
    resumed = mtn.compare(two_variants(), names3, steps=STEPS, seeds=(0, 1), out_dir=tmp_path / "run")
    assert sorted(trained) == sorted([("plain", 0), ("batchnorm", 0), ("plain", 1), ("batchnorm", 1)])  # once each
    strip = lambda runs: [{k: v for k, v in r.items() if k != "ms_per_step"} for r in runs]  # noqa: E731
    assert strip(resumed.runs) == strip(reference.runs) and resumed.curves == reference.curves
    assert len(list((tmp_path / "run").glob("runs/*/*/checkpoint.pt"))) == 4
    assert len((tmp_path / "run" / "results.csv").read_text().splitlines()) == 5
    trained.clear()
    mtn.compare(two_variants(), names3, steps=STEPS, seeds=(0, 1), out_dir=tmp_path / "run")
    assert trained == []  # a finished grid trains nothing again


def test_a_folder_of_another_experiment_is_refused(names3, tmp_path):
    mtn.compare(two_variants(), names3, steps=5, seeds=(0,), out_dir=tmp_path)
    with pytest.raises(ValueError, match=r"holds runs of a different experiment \(settings that differ: \['steps'\]\)"):
        mtn.compare(two_variants(), names3, steps=6, seeds=(0,), out_dir=tmp_path)


def test_a_checkpoint_of_a_run_loads_back(names3, tmp_path):
    results = mtn.compare({"plain": lambda: mtn.mlp()}, names3, steps=STEPS, seeds=(0,), out_dir=tmp_path)
    reg = mtn.RegisterModel(mtn.mlp(), "plain", "seed 0", device="cpu", verbose=False)
    reg.load(tmp_path / "runs" / "plain" / "seed-0" / "checkpoint.pt")
    assert reg.evaluate(*names3["val"]) == pytest.approx(results.runs[0]["val"], abs=1e-6)


def test_text_datasets_train_sequence_models(capsys):
    text = mtn.TextDataset("to be or not to be, that is the question. " * 40)
    variants = {"gpt": mtn.Variant(lambda: mtn.GPT(text.vocab_size, block_size=16, n_embd=16, n_head=2, n_layer=1), block_size=16)}
    results = mtn.compare(variants, text, steps=5, seeds=(0,), lr=1e-3, optimizer="adamw", eval_iters=2,
                          batch_size=4)
    assert results.splits == ["train", "val"] and capsys.readouterr().out == ""  # no step lines in the table's way
    reg = mtn.RegisterModel(mtn.GPT(text.vocab_size, block_size=16, n_embd=16, n_head=2, n_layer=1), "gpt", device="cpu", verbose=False)
    assert reg.estimate_loss(text, 2, 4, 16)["val"] != pytest.approx(results.runs[0]["val"])  # it was trained
    assert results.runs[0]["parameters"] == mtn.GPT(text.vocab_size, block_size=16, n_embd=16, n_head=2, n_layer=1).num_parameters()
    with pytest.raises(ValueError, match="needs the Variant's block_size"):
        mtn.compare({"gpt": lambda: mtn.GPT(text.vocab_size, block_size=16, n_embd=16, n_head=2, n_layer=1)}, text, steps=1, seeds=(0,))


def test_bad_arguments_are_named(names3):
    with pytest.raises(ValueError, match="at least one variant"):
        mtn.compare({}, names3, steps=5)
    with pytest.raises(TypeError, match="variant 'x' must be a function that builds a model"):
        mtn.compare({"x": mtn.mlp()}, names3, steps=5)
    with pytest.raises(ValueError, match=r"Variant: unknown training setting learning_rate in train; known: steps, "
                                         r"batch_size, lr"):
        mtn.compare({"x": mtn.Variant(mtn.mlp, train={"learning_rate": 1})}, names3, steps=5)
    with pytest.raises(ValueError, match=r"variant names become folder names.*got \['a/b'\]"):
        mtn.compare({"a/b": mtn.mlp}, names3, steps=5, out_dir="unused")
    with pytest.raises(TypeError, match="must return a minitorchnn Module, got Linear"):
        mtn.compare({"x": lambda: torch.nn.Linear(3, 3)}, names3, steps=5, seeds=(0,))


@pytest.mark.parametrize("train, message", [
    ({"seed": 5}, "Variant: train sets 'seed', which compare\\(\\) sets for every run from its seeds"),
    ({"colour": "red"}, r"Variant: unknown training setting colour in train; known: steps, batch_size"),
])
def test_a_variant_refuses_settings_it_would_ignore(train, message):
    with pytest.raises(ValueError, match=message):
        mtn.Variant(lambda: mtn.mlp(), train=train)


def test_a_gpt_on_names_fails_the_dry_run_with_the_variant_named(names3):
    gpt = mtn.Variant(lambda: mtn.GPT(27, block_size=3, n_embd=16, n_head=2, n_layer=1), block_size=3)
    with pytest.raises(ValueError, match=r"variant 'gpt' gives logits of shape \(2, 3, 27\) for a batch of \(2, 3\), "
                                         r"but the data's targets are \(2,\)"):
        mtn.compare({"plain": lambda: mtn.mlp(), "gpt": gpt}, names3, steps=2, seeds=(0,))


@pytest.mark.parametrize("damage, message", [
    (lambda text: text[: len(text) // 2], r"result.json: damaged, not JSON \(.*\); delete it to train that run again"),
    (lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "loss"}),
     r"result.json: damaged, it lacks \['loss'\]; delete it to train that run again"),
])
def test_a_damaged_run_folder_names_the_file(names3, tmp_path, damage, message):
    mtn.compare({"plain": lambda: mtn.mlp()}, names3, steps=2, seeds=(0,), out_dir=tmp_path)
    result = tmp_path / "runs" / "plain" / "seed-0" / "result.json"
    result.write_text(damage(result.read_text()))
    with pytest.raises(ValueError, match=f"{re.escape(str(tmp_path))}/runs/plain/seed-0/{message}"):
        mtn.compare({"plain": lambda: mtn.mlp()}, names3, steps=2, seeds=(0,), out_dir=tmp_path)


def test_a_damaged_experiment_json_names_the_file(names3, tmp_path):
    mtn.compare({"plain": lambda: mtn.mlp()}, names3, steps=2, seeds=(0,), out_dir=tmp_path)
    (tmp_path / "experiment.json").write_text('{"variants": ["plain"] "steps": 2}')
    with pytest.raises(ValueError, match=r"experiment.json: damaged, not JSON \(Expecting ',' delimiter"):
        mtn.compare({"plain": lambda: mtn.mlp()}, names3, steps=2, seeds=(0,), out_dir=tmp_path)


def test_the_paired_difference_by_hand():
    # seed by seed, b is 0.03, 0.02, 0.04 above a: mean 0.03, stdev 0.01, SE 0.01 / sqrt(3)
    paired = compare_module.paired_difference([2.10, 2.20, 2.15], [2.13, 2.22, 2.19])
    assert paired.differences == pytest.approx([0.03, 0.02, 0.04])
    assert paired.mean == pytest.approx(0.03) and paired.se == pytest.approx(0.01 / 3 ** 0.5)
    assert paired.threshold == pytest.approx(4.303 * 0.01 / 3 ** 0.5) and paired.verdict == "clear"
    assert str(paired) == "+0.0300 ± 0.0058 clear"
    # each loss spreads over the seeds more than the gap (stdev 0.05): compared unpaired, the gap looks like noise
    assert 0.03 < 2 * statistics.stdev([2.10, 2.20, 2.15])
    # the signs disagree: within noise, and b lower is a negative mean
    mixed = compare_module.paired_difference([2.10, 2.20, 2.15], [2.08, 2.21, 2.11])
    assert mixed.mean == pytest.approx(-0.0166667, abs=1e-6) and mixed.verdict == "within noise"
    # 2 seeds: t = 12.71, so 0.05 and 0.03 (mean 0.04, SE 0.01) is within noise
    assert compare_module.paired_difference([1.0, 1.0], [1.05, 1.03]).verdict == "within noise"
    assert compare_module.paired_difference([1.0, 1.0], [1.0, 1.0]).verdict == "within noise"  # no difference at all
    assert compare_module.paired_difference([1.0, 2.0], [1.5, 2.5]).verdict == "clear"  # the same gap every seed


def test_the_paired_difference_refuses_what_it_cannot_judge():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        compare_module.paired_difference([2.1], [2.2])
    with pytest.raises(ValueError, match="one loss per seed for both variants, got 3 and 2"):
        compare_module.paired_difference([2.1, 2.2, 2.3], [2.2, 2.3])
    with pytest.raises(ValueError, match="degrees of freedom"):
        compare_module.t_critical(0)


def students_t_mass(t: float, df: int, n: int = 20_000) -> float:
    """P(0 < T < t) for Student's t with df degrees of freedom: Simpson's rule on its density."""
    norm = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    density = lambda x: norm * (1 + x * x / df) ** (-(df + 1) / 2)
    h = t / n
    inner = sum((4 if i % 2 else 2) * density(i * h) for i in range(1, n))
    return h / 3 * (density(0.0) + inner + density(t))


def test_t_critical_is_students_95_percent_value():
    for df in (1, 2, 3, 4, 5, 10, 20, 30):  # 2.5% in each tail: the mass between 0 and t is 0.475
        assert students_t_mass(compare_module.t_critical(df), df) == pytest.approx(0.475, abs=2e-4), df
    assert students_t_mass(compare_module.t_critical(100), 100) >= 0.475  # beyond the table: errs towards noise


def test_pure_noise_is_called_clear_about_5_percent_of_the_time():
    generator = torch.Generator().manual_seed(0)
    for seeds in (2, 3, 5):
        d = torch.randn(4000, seeds, generator=generator)
        clear = sum(compare_module.paired_difference([0.0] * seeds, row.tolist()).verdict == "clear" for row in d)
        assert 0.03 < clear / 4000 < 0.07, f"{seeds} seeds: {clear / 4000:.3f} of pure-noise differences were clear"


def test_the_table_judges_every_variant_against_the_best_by_the_paired_difference(names3):
    results = mtn.compare(two_variants(), names3, steps=STEPS, seeds=(0, 1, 2))
    best = results.best()
    other = next(v for v in results.variants if v != best)
    paired = results.paired(best, other)
    expected = [r["val"] - s["val"] for s in results.runs if s["variant"] == best
                for r in results.runs if r["variant"] == other and r["seed"] == s["seed"]]
    assert paired.differences == pytest.approx(expected) and paired.mean > 0
    column = {row["variant"]: row["paired Δval ± SE"] for row in results.table().rows}
    assert column[best] == "best" and column[other] == f"{paired.mean:+.4f} ± {paired.se:.4f} {paired.verdict}"
    assert results.paired(other, best).mean == pytest.approx(-paired.mean)
    one_seed = mtn.compare(two_variants(), names3, steps=STEPS, seeds=(0,)).table().rows
    assert [row["paired Δval ± SE"].endswith(("best", "(1 seed)")) for row in one_seed] == [True, True]
    alone = mtn.compare({"plain": mtn.mlp}, names3, steps=2, seeds=(0, 1)).table().rows[0]
    assert not any(key.startswith("paired") for key in alone)  # nothing to compare with
    with pytest.raises(KeyError, match="no variant 'nope'"):
        results.paired("plain", "nope")
