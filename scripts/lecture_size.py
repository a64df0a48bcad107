"""GPT against WaveGPT at lecture size, on a GPU: the run that notebook 06 and lecture 06 cannot do on a CPU.

The config is the lecture's and nanoGPT's shakespeare_char: 6 layers, 6 heads, n_embd 384, block 256,
batch 64, dropout 0.2, 5,000 AdamW steps at lr 1e-3 (betas 0.9/0.99, warmup 100, cosine to 1e-4, clip 1.0;
notebook 05's settings), 2 seeds per model. The rate is nanoGPT's: it was not tuned at this size.

The splits are notebook 06's (scripts/wavegpt_final.py): train on chars [0, 85%), choose on val = chars
[90%, 100%), and report test = chars [85%, 90%), which no run trains on or chooses by. Every 250 steps
both val and test are scored over the WHOLE split, in non-overlapping windows of 256 (every character
scored once, each with 0 to 255 characters of context, as in training), and train on 10 fixed batches.
The reported figures are the best val and the test loss AT THAT STEP (nanoGPT keeps the checkpoint with
the best val), beside the last ones.

Usage:
    python scripts/lecture_size.py all --out DIR [--deadline 470]   # the 4 runs at once, then the table
    python scripts/lecture_size.py run GPT 0 --out DIR                # one run
    python scripts/lecture_size.py collect DIR                         # the table from finished runs
    python scripts/lecture_size.py all --out /tmp/tiny --tiny          # a 40-step CPU rehearsal

Each run appends a JSON line per evaluation to DIR/MODEL-seedS.jsonl as it goes, and a last line with
the summary, so a run stopped by its deadline still leaves every evaluation it made.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import minitorchnn as mtn
from minitorchnn.train.evaluation import estimate_loss, evaluate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wavegpt_final import three_splits  # noqa: E402  (the same train / val / test split as notebook 06)

CONFIG = dict(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2)
TINY = dict(n_layer=2, n_head=2, n_embd=32, block_size=32, dropout=0.2)  # the CPU rehearsal
MODELS = {"GPT": mtn.GPT, "WaveGPT": mtn.WaveGPT}
SEEDS = (0, 1)


class Deadline(Exception):
    """The run's wall-clock budget is spent: training stops after the step under way."""


def whole_val_split(dataset, block_size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """x, y: (N, block_size) non-overlapping windows covering the whole val split, y shifted by one."""
    starts = torch.arange(0, dataset.split_length("val") - block_size, block_size)
    window = dataset.windows("val", starts, block_size + 1, device)  # (N, block_size + 1)
    return window[:, :-1], window[:, 1:]


def run(model_name: str, seed: int, out: Path, deadline: float, steps: int, tiny: bool) -> dict:
    config, batch_size = (TINY, 8) if tiny else (CONFIG, 64)
    block_size, every = config["block_size"], (10 if tiny else 250)
    device = mtn.default_device()
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # TF32 matrix products, as nanoGPT; both models alike
    fit, test = three_splits(mtn.shakespeare_dataset())
    val_xy, test_xy = whole_val_split(fit, block_size, device), whole_val_split(test, block_size, device)
    torch.manual_seed(seed)
    reg = mtn.RegisterModel(MODELS[model_name](fit.vocab_size, **config), model_name, f"seed {seed}",
                            verbose=False)
    params = reg.model.parameters()
    log_path = out / f"{model_name}-seed{seed}.jsonl"
    log_path.write_text("")
    start, best = time.perf_counter(), {"val": float("inf")}

    def score(s: mtn.Step) -> None:
        if s.step % every and s.step != s.steps:
            return
        row = {"step": s.step,
               "train": estimate_loss(reg.model, fit, 10, batch_size, block_size)["train"],
               "val": evaluate(reg.model, *val_xy, batch_size=batch_size),
               "test": evaluate(reg.model, *test_xy, batch_size=batch_size),
               "seconds": round(time.perf_counter() - start, 1)}
        with log_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if row["val"] < best["val"]:  # keep the best-val weights, as nanoGPT keeps that checkpoint
            best.update(row, weights=[p.detach().clone() for p in params])
        if time.perf_counter() - start > deadline:
            raise Deadline

    training = mtn.TrainConfig(steps=steps, batch_size=batch_size, optimizer="adamw", lr=1e-3, betas=(0.9, 0.99),
                               schedule="cosine", warmup_steps=min(100, steps // 10), final_lr=1e-4, clip=1.0,
                               seed=seed, eval_iters=1)
    finished = True
    try:
        reg.train_text(fit, training, block_size=block_size, on_step=score, log=False, progress=False)
    except Deadline:
        finished = False
    last = json.loads(log_path.read_text().splitlines()[-1])
    with torch.no_grad():
        for p, w in zip(params, best["weights"]):
            p.copy_(w)
    sample = fit.decode(reg.model.generate(torch.zeros(1, 1, dtype=torch.long), 300, seed=0)[0])
    summary = {"model": model_name, "seed": seed, "parameters": reg.n_parameters, "finished": finished,
               "steps_done": last["step"], "steps": steps, "best_step": best["step"], "best_val": best["val"],
               "test_at_best": best["test"], "train_at_best": best["train"], "last_val": last["val"],
               "last_test": last["test"], "seconds": round(time.perf_counter() - start, 1),
               "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
               "torch": torch.__version__, "sample_from_best": sample}
    with log_path.open("a") as f:
        f.write(json.dumps({"summary": summary}) + "\n")
    return summary


def collect(out: Path) -> str:
    rows = []
    for path in sorted(out.glob("*-seed*.jsonl")):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line]
        if lines and "summary" in lines[-1]:
            rows.append(lines[-1]["summary"])
    lines = ["model    seed  parameters  steps            best val  at step  test there  last val  last test  seconds"]
    for r in rows:
        done = f"{r['steps_done']:,}" + ("" if r["finished"] else " (stopped)")
        lines.append(f"{r['model']:8s} {r['seed']:>4}  {r['parameters']:>10,}  {done:15s}  {r['best_val']:8.4f}  "
                     f"{r['best_step']:>7,}  {r['test_at_best']:10.4f}  {r['last_val']:8.4f}  {r['last_test']:9.4f}  "
                     f"{r['seconds']:7.0f}")
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        best_val, test = (statistics.mean(r[key] for r in mine) for key in ("best_val", "test_at_best"))
        lines.append(f"{model} mean of {len(mine)} seeds: best val {best_val:.4f}, test there {test:.4f}")
    if rows:
        lines.append(f"device: {rows[0]['device']}, torch {rows[0]['torch']}; the {len(rows)} runs trained at once "
                     f"on the one GPU, so each run's seconds are shared time")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("all", "run", "collect"))
    parser.add_argument("args", nargs="*")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--deadline", type=float, default=float("inf"), help="seconds of training per run")
    parser.add_argument("--tiny", action="store_true")
    a = parser.parse_args()
    steps = 40 if a.tiny else 5_000
    if a.command == "collect":
        print(collect(Path(a.args[0])))
        return
    a.out.mkdir(parents=True, exist_ok=True)
    if a.command == "run":
        print(json.dumps(run(a.args[0], int(a.args[1]), a.out, a.deadline, steps, a.tiny)))
        return
    extra = ["--deadline", str(a.deadline)] + (["--tiny"] if a.tiny else [])
    procs = [subprocess.Popen([sys.executable, __file__, "run", m, str(s), "--out", str(a.out), *extra])
             for s in SEEDS for m in MODELS]
    codes = [p.wait() for p in procs]
    print(collect(a.out))
    if any(codes):
        raise SystemExit(f"exit codes {codes}")


if __name__ == "__main__":
    main()
