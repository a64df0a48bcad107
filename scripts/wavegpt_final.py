"""The final GPT-against-WaveGPT comparison of notebook 06, with a test split that nothing was tuned on.

The splits. Tiny Shakespeare's usual split is train = the first 90% of the characters, val = the last 10%;
the ablation (experiments/wavegpt_ablation.toml) chose WaveGPT's design on that val. Here the last 5% of
the training text, characters 85%-90%, becomes the TEST split, and the models of this script train on the
first 85% only. So the test text was never scored by any run that decided something: the ablation's models
trained on it (they chose a design by val), and no model here trains on it.

    fit:  train = chars [0, 85%)     val = chars [90%, 100%)   (the ablation's val: every choice is made on it)
    test: chars [85%, 90%)           (scored only once, for the final table)

Three stages, each a list of (job) runs of 2,000 AdamW steps at notebook 06's CPU config (n_embd 128,
4 heads, 4 layers, block 64, batch 12, warmup 100, cosine to lr/10, clip 1.0):

    sweep    GPT and WaveGPT at lr 5e-4, 1e-3, 2e-3, 4e-3 and 8e-3, seeds 0 and 1  -> results/wavegpt_lr_sweep.csv
    control  the 3-block GPT of the ablation (variant gpt-3-blocks of experiments/wavegpt_ablation.toml,
             the control for parallel-stream), seeds 0 and 1      -> rows added to results/wavegpt_ablation.csv
    final    each model at the best lr of the sweep (lowest mean val), seeds 0, 1, 2, plus the GPT at equal
             time: 2,000 x 1.076 steps (WaveGPT's step costs 1.076x the GPT's, results/wavegpt_step.txt)
                                                                               -> results/wavegpt_final.csv

Usage (each run is saved to RUNS/JOB.json as it finishes; a second call skips finished runs, so two
shards run side by side on two cores):
    python scripts/wavegpt_final.py run sweep --shard 0/2      # and --shard 1/2 in a second process
    python scripts/wavegpt_final.py run final --shard 0/2
    python scripts/wavegpt_final.py collect                    # writes the CSVs from the finished runs
"""
from __future__ import annotations

import argparse
import copy
import csv
import io
import json
import statistics
import sys
from pathlib import Path

import torch

import minitorchnn as mtn
from minitorchnn.fileio import write_atomic
from minitorchnn.nn.module import inference
from minitorchnn.train.evaluation import estimate_loss

ROOT = Path(__file__).resolve().parent.parent
RUNS = Path("/tmp/wavegpt_runs")
CONFIG = dict(block_size=64, n_embd=128, n_head=4, n_layer=4)  # notebook 06's CPU config
BATCH_SIZE, STEPS, EVAL_ITERS = 12, 2_000, 100
RATES = (1e-3, 2e-3, 5e-4, 4e-3, 8e-3)  # in the order the sweep runs them: 4e-3, 8e-3 extend a best at the top
SWEEP_SEEDS, FINAL_SEEDS = (0, 1), (0, 1, 2)
CURVE_WINDOW = 50  # the training-loss curves are kept as means over windows of 50 steps
EQUAL_TIME_RATIO = 1.076  # WaveGPT's step / the GPT's, results/wavegpt_step.txt (2 threads, medians of 15 rounds)
MODELS = {"GPT": mtn.GPT, "WaveGPT": mtn.WaveGPT}


def three_splits(data: mtn.TextDataset) -> tuple[mtn.TextDataset, mtn.TextDataset]:
    """(fit, test): fit trains on chars [0, 85%) and scores val on [90%, 100%); test's 'val' is [85%, 90%)."""
    text = torch.cat([data.train, data.val])
    cut = int(0.85 * len(text))
    fit, test = copy.copy(data), copy.copy(data)
    fit.train, fit.val, fit._on_device = text[:cut], data.val, {}
    test.train, test.val, test._on_device = text[:cut], text[cut:len(data.train)], {}
    return fit, test


def training(lr: float, steps: int, seed: int) -> mtn.TrainConfig:
    return mtn.TrainConfig(steps=steps, batch_size=BATCH_SIZE, optimizer="adamw", lr=lr, betas=(0.9, 0.99),
                           schedule="cosine", warmup_steps=100, final_lr=lr / 10, clip=1.0,
                           eval_iters=EVAL_ITERS, seed=seed)


def best_rates() -> dict[str, float]:
    """Each model's lr with the lowest mean val, over the seeds that all its rates have finished."""
    rows = _read_runs("sweep")
    best = {}
    for model in MODELS:
        rates = sorted({r["lr"] for r in rows if r["model"] == model})
        seeds = set.intersection(*({r["seed"] for r in rows if r["model"] == model and r["lr"] == lr}
                                   for lr in rates))  # compare rates on the seeds they all have
        means = {lr: statistics.mean(r["val"] for r in rows if r["model"] == model and r["lr"] == lr
                                     and r["seed"] in seeds) for lr in rates}
        best[model] = min(means, key=means.get)
    return best


def jobs(stage: str) -> list[dict]:
    if stage == "sweep":
        return [dict(stage=stage, model=m, lr=lr, seed=s, steps=STEPS) for lr in RATES for s in SWEEP_SEEDS
                for m in MODELS]
    if stage == "control":
        return [dict(stage=stage, model="gpt-3-blocks", seed=s) for s in SWEEP_SEEDS]
    if stage == "summary":
        return [dict(stage=stage, model="wave-gpt's summary design", lr=1e-3, seed=0, steps=STEPS)]
    if stage == "final":
        best = best_rates()
        swept = {(r["model"], r["seed"]) for r in _read_runs("sweep") if r["lr"] == best[r["model"]]}
        out = []
        for s in FINAL_SEEDS:  # a seed the sweep trained at the best rate is that very run: not trained twice
            out += [dict(stage=stage, model=m, lr=best[m], seed=s, steps=STEPS) for m in MODELS
                    if (m, s) not in swept]
            out.append(dict(stage=stage, model="GPT, equal time", lr=best["GPT"], seed=s,
                            steps=round(STEPS * EQUAL_TIME_RATIO)))
        return out
    raise SystemExit(f"unknown stage {stage!r}: sweep, control or final")


def job_name(job: dict) -> str:
    name = f"{job['stage']}-{job['model']}-seed{job['seed']}"
    if "lr" in job:
        name += f"-lr{job['lr']:g}-steps{job['steps']}"
    return name.replace(" ", "_").replace(",", "")


def run_job(job: dict) -> dict:
    if job["stage"] == "control":  # exactly the experiment file's variant, through compare()
        from minitorchnn.lab.experiment import load_experiment
        experiment = load_experiment(ROOT / "experiments" / "wavegpt_ablation.toml")
        result = mtn.compare({job["model"]: experiment.variants[job["model"]]}, experiment.dataset(),
                             (job["seed"],), config=experiment.train, steps=experiment.steps, progress=False)
        return {**result.runs[0], **job}
    if job["stage"] == "summary":
        return run_summary(job)
    fit, test = three_splits(mtn.shakespeare_dataset())
    torch.manual_seed(job["seed"])
    build = MODELS["GPT" if job["model"].startswith("GPT") else job["model"]]
    reg = mtn.RegisterModel(build(fit.vocab_size, **CONFIG), job["model"], f"seed {job['seed']}", verbose=False)
    run = reg.train_text(fit, training(job["lr"], job["steps"], job["seed"]), block_size=CONFIG["block_size"],
                         log=False, progress=False)
    _, train_loss, val_loss = run["eval"][-1]
    test_loss = estimate_loss(reg.model, test, EVAL_ITERS, BATCH_SIZE, CONFIG["block_size"])["val"]
    sample = reg.model.generate(torch.zeros(1, 1, dtype=torch.long), 300, seed=0)[0]
    losses = torch.tensor(reg.history["loss"])
    n = len(losses) // CURVE_WINDOW * CURVE_WINDOW
    return {**job, "parameters": reg.n_parameters, "train": train_loss, "val": val_loss, "test": test_loss,
            "seconds": run["seconds"], "ms_per_step": 1000 * run["seconds"] / job["steps"],
            "sample": fit.decode(sample), "curve": losses[:n].view(-1, CURVE_WINDOW).mean(1).tolist()}


class SummaryWaveGPT(mtn.LanguageModel):
    """wave-gpt's WaveGPT as notebook 06 rebuilds it: a (B, 1, C) WaveNet summary of the whole block, added
    at every position. It reads the future: position t's summary has seen the characters after t."""

    def __init__(self, vocab_size, **config):
        self.block_size = config["block_size"]
        self.inner = mtn.ParallelWaveGPT(vocab_size, **config)

    def forward(self, idx):
        m = self.inner
        x = m.embed(idx)  # (B, T, C)
        h = x
        for block in m.blocks:
            h = block(h)
        summary = m.wavenet_out(m.wavenet(m.wavenet_in(x)))[:, -1:, :]  # (B, 1, C): it has read all T tokens
        return m.head(h + m.beta * summary)


def scored_as_generated(model: mtn.Module, data, batches: int) -> tuple[float, float]:
    """(teacher-forced loss, loss as in generation) on the same val windows: the first feeds the whole
    window at once, as training and estimate_loss do; the second predicts position t from tokens 0..t
    alone, as generate() does, so that no later token is in the input."""
    generator = torch.Generator().manual_seed(1337)
    forced, generated = [], []
    with inference(model):
        for _ in range(batches):
            x, y = data.get_batch("val", BATCH_SIZE, CONFIG["block_size"], generator=generator)  # (B, T)
            forced.append(torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten()).item())
            logits = torch.stack([model(x[:, :t + 1])[:, -1] for t in range(x.shape[1])], dim=1)  # (B, T, V)
            generated.append(torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten()).item())
    return statistics.mean(forced), statistics.mean(generated)


def run_summary(job: dict) -> dict:
    """The summary design, trained like the ablation's variants (the usual 90/10 split, lr 1e-3, seed 0)."""
    data = mtn.shakespeare_dataset()
    torch.manual_seed(job["seed"])
    model = SummaryWaveGPT(data.vocab_size, **dict(CONFIG, n_layer=3, wavenet_channels=64))
    reg = mtn.RegisterModel(model, job["model"], f"seed {job['seed']}", verbose=False)
    run = reg.train_text(data, training(job["lr"], job["steps"], job["seed"]), block_size=CONFIG["block_size"],
                         log=False, progress=False)
    _, train_loss, val_loss = run["eval"][-1]
    forced, generated = scored_as_generated(reg.model, data, batches=20)
    sample = reg.model.generate(torch.zeros(1, 1, dtype=torch.long), 300, seed=0)[0]
    return {**job, "parameters": reg.n_parameters, "train": train_loss, "val": val_loss,
            "val_teacher_forced_20": forced, "val_as_generated_20": generated,
            "beta": reg.model.inner.beta.item(), "seconds": run["seconds"],
            "ms_per_step": 1000 * run["seconds"] / job["steps"], "sample": data.decode(sample)}


def _read_runs(stage: str) -> list[dict]:
    texts = [p.read_text() for p in sorted(RUNS.glob(f"{stage}-*.json"))]
    return [json.loads(t) for t in texts if t]  # an empty file: a run claimed and still training


QUEUE = [("summary", None), ("sweep", "lr0.0005-"), ("control", None)]  # a second pair of workers' order


def queue(order=None) -> None:
    """Work through QUEUE, claiming each run by writing its file first (a pending placeholder), so that
    workers started with `run` (which skip existing files) and other queue workers never repeat it."""
    import os
    torch.set_num_threads(1)
    RUNS.mkdir(parents=True, exist_ok=True)
    for stage, pattern in order or QUEUE:
        for job in jobs(stage):
            path = RUNS / f"{job_name(job)}.json"
            if pattern and pattern not in job_name(job):
                continue
            try:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                continue
            result = run_job(job)
            path.write_text(json.dumps(result))
            print(f"{job_name(job)}: train {result['train']:.4f}, val {result['val']:.4f}", flush=True)


def run(stage: str, shard: str) -> None:
    i, n = (int(k) for k in shard.split("/"))
    torch.set_num_threads(1)  # two shards share the two cores
    RUNS.mkdir(parents=True, exist_ok=True)
    for job in jobs(stage)[i::n]:
        path = RUNS / f"{job_name(job)}.json"
        if path.exists():
            continue
        result = run_job(job)
        path.write_text(json.dumps(result))
        print(f"{job_name(job)}: " + ", ".join(f"{k} {result[k]:.4f}" for k in ("train", "val") if k in result)
              + f", {result['ms_per_step']:.1f} ms/step", flush=True)


def _write(path: Path, rows: list[dict], columns: list[str]) -> None:
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, table.getvalue())  # a committed table is replaced whole or not at all
    print(f"wrote {path.relative_to(ROOT)} ({len(rows)} runs)")


def collect() -> None:
    """Write the committed tables from the finished runs (the column `variant` names the model)."""
    named = lambda rows: [{**r, "variant": r["model"]} for r in rows]  # noqa: E731
    sweep = sorted(named(_read_runs("sweep")), key=lambda r: (r["model"], r["lr"], r["seed"]))
    if sweep:  # no test column: the sweep chooses on val, and its test losses are not looked at here
        _write(ROOT / "results" / "wavegpt_lr_sweep.csv", sweep,
               ["variant", "lr", "seed", "parameters", "train", "val", "ms_per_step", "steps"])
        best = best_rates()
        final = [r for r in sweep if r["lr"] == best[r["model"]]]  # each model at its best rate
        final += named(_read_runs("final"))
        final = sorted({(r["model"], r["seed"], r["steps"]): r for r in final}.values(),
                       key=lambda r: (r["seed"], r["model"]))
        _write(ROOT / "results" / "wavegpt_final.csv", final,
               ["variant", "lr", "seed", "parameters", "steps", "train", "val", "test", "ms_per_step"])
        runs = [{k: r[k] for k in ("variant", "lr", "seed", "steps", "curve", "sample")} for r in final]
        (ROOT / "results" / "wavegpt_final_runs.json").write_text(json.dumps(runs, indent=1) + "\n")
        print("wrote results/wavegpt_final_runs.json (training curves in windows of "
              f"{CURVE_WINDOW} steps, and a sample of each run)")
    summary = _read_runs("summary")
    if summary:
        (ROOT / "results" / "wavegpt_summary_design.json").write_text(json.dumps(summary[0], indent=1) + "\n")
        print("wrote results/wavegpt_summary_design.json")
    control = _read_runs("control")
    if control:  # the ablation's table gains the variant the experiment file now has, in compare()'s order
        path = ROOT / "results" / "wavegpt_ablation.csv"
        with open(path) as f:
            rows = [r for r in csv.DictReader(f) if r["variant"] != "gpt-3-blocks"]
        columns = ["variant", "seed", "parameters", "train", "val", "ms_per_step", "steps"]
        merged = []
        for seed in dict.fromkeys(r["seed"] for r in rows):
            merged += [r for r in rows if r["seed"] == seed]
            merged += [{**r, "seed": str(r["seed"])} for r in control if str(r["seed"]) == seed]
        _write(path, merged, columns)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["run", "queue", "collect", "jobs"])
    parser.add_argument("stage", nargs="?", default="sweep")
    parser.add_argument("--shard", default="0/1")
    parser.add_argument("--match", default=None, help="queue: only the runs of STAGE whose name contains this")
    args = parser.parse_args()
    if args.action == "run":
        run(args.stage, args.shard)
    elif args.action == "queue":
        queue([(args.stage, args.match)] if args.match else None)
    elif args.action == "jobs":
        for job in jobs(args.stage):
            print(job_name(job))
    else:
        collect()
    sys.exit(0)
