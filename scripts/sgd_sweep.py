"""Notebook 05's optimiser comparison, made fair to SGD: SGD's learning rate and momentum, swept at the same
2,000 steps as the notebook's AdamW GPT, before the notebook says what AdamW buys.

    nice -n 5 python scripts/sgd_sweep.py            # writes results/sgd_sweep.csv, one row per finished run

The model is notebook 05's CPU GPT (mtn.GPT defaults: 4 layers, 4 heads, n_embd 128, block 64, 818,241
parameters) and the training is its AdamW run's (batches of 12 x 64, warmup 100, cosine decay to lr/10,
gradient clipping 1.0, estimate_loss on 100 batches per split, seed 1337 for the weights and the batches),
with SGD in place of AdamW. A run whose loss diverges is recorded as diverged (compare() would stop the whole
grid there, which is why this is a script and not an experiment file). Runs already in the CSV are skipped,
so an interrupted sweep resumes; the grid is in order of interest, so a partial table is still useful.
The committed table was made by two processes sharing the grid (--part 0/2 and --part 1/2) on a shared 2-core
CPU, so its ms_per_step says little; its first row (momentum 0.9, lr 0.03) came from an experiment file run by
`python -m minitorchnn compare` with the same model, settings and seed, before this script replaced it.
The plain-SGD rows (momentum 0) were added later by the same command in two processes, while two other
training runs shared the CPU: their ms_per_step says little too.
"""
from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import torch

import minitorchnn as mtn

ROOT = Path(__file__).resolve().parents[1]
STEPS, SEED = 2_000, 1337
TRAINING = mtn.TrainConfig(steps=STEPS, batch_size=12, optimizer="sgd", schedule="cosine", warmup_steps=100, clip=1.0,
                           seed=SEED, eval_iters=100)
# (momentum, lr): momentum 0.9 over two decades first (0.3 was the notebook's former single setting), then
# plain SGD, whose steps are 10x smaller than momentum 0.9's at the same lr
GRID = [(0.9, 0.03), (0.9, 1.0), (0.9, 0.1), (0.9, 3.0), (0.9, 0.3), (0.0, 3.0), (0.0, 1.0), (0.0, 10.0), (0.0, 0.3)]
COLUMNS = ["variant", "seed", "optimizer", "momentum", "lr", "final_lr", "steps", "train", "val", "ms_per_step",
           "status"]


def run_one(dataset, momentum: float, lr: float, steps: int = STEPS) -> dict:
    torch.manual_seed(SEED)  # the same initial weights as the notebook's GPT
    name = f"sgd-m{momentum:g}-lr{lr:g}"
    reg = mtn.RegisterModel(mtn.GPT(dataset.vocab_size), name, "v1", verbose=False)
    config = TRAINING.replace(lr=lr, final_lr=lr / 10, momentum=momentum, steps=steps,
                              warmup_steps=min(100, steps // 10))
    row = {"variant": name, "seed": SEED, "optimizer": "sgd", "momentum": momentum, "lr": lr, "final_lr": lr / 10}
    try:
        run = reg.train_text(dataset, config, block_size=64, log=False, progress=False)
    except mtn.TrainingDiverged as err:
        return {**row, "steps": "", "train": math.nan, "val": math.nan, "ms_per_step": "", "status": f"diverged: {err}"}
    _, train_loss, val_loss = run["eval"][-1]
    return {**row, "steps": steps, "train": train_loss, "val": val_loss,
            "ms_per_step": 1000 * run["seconds"] / steps, "status": "ok"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "results" / "sgd_sweep.csv"))
    parser.add_argument("--steps", type=int, default=STEPS, help="a quick try with fewer steps (use another --out)")
    parser.add_argument("--part", default="0/1", help="i/n: run every n-th run of the grid from the i-th, so that "
                        "n processes can share the grid and append to the same CSV")
    parser.add_argument("--threads", type=int, default=1, help="torch's CPU threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    done = set()
    if out.exists():
        done = {(float(r["momentum"]), float(r["lr"])) for r in csv.DictReader(out.open())}
    else:
        with out.open("w", newline="") as f:
            csv.DictWriter(f, COLUMNS).writeheader()
    dataset = mtn.shakespeare_dataset()
    part, parts = (int(n) for n in args.part.split("/"))
    for momentum, lr in GRID[part::parts]:
        if (momentum, lr) in done:
            continue
        row = run_one(dataset, momentum, lr, args.steps)
        with out.open("a", newline="") as f:  # one row per finished run: an interrupted sweep keeps them
            csv.DictWriter(f, COLUMNS).writerow(row)
        print(f"momentum {momentum:g}, lr {lr:g}: val {row['val']:.4f} ({row['status'][:60]})", flush=True)


if __name__ == "__main__":
    main()
