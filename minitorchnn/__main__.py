"""Command line: `python -m minitorchnn [train] --model NAME ...` trains a course model on names.txt,
prints its train/val/test losses and samples names from it; `python -m minitorchnn compare FILE.toml`
runs an experiment grid (variants x seeds) and writes its results to a run folder."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from .data import names_dataset
from .models import DEFAULT_BLOCK_SIZE, MODELS
from .training import RegisterModel

COMMANDS = ("train", "compare")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m minitorchnn",
        description="Train a course model on names.txt, print its split losses and sample names from it.",
        epilog="Example: python -m minitorchnn train --model wavenet --steps 200000  (the lecture's full run)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    train = sub.add_parser("train", help="train a model on names.txt (the default command)",
                           description="Train a model on names.txt with minibatch SGD, then evaluate and sample.")
    train.add_argument("--model", choices=sorted(MODELS), default="mlp", help="which model to build (default: mlp)")
    train.add_argument("--block-size", type=int, default=None,
                       help="characters of context (default: 3 for the MLPs, 8 for wavenet)")
    train.add_argument("--steps", type=int, default=30_000, help="SGD steps (default: 30000, about a minute on 2 cores)")
    train.add_argument("--batch-size", type=int, default=32, help="examples per step (default: 32)")
    train.add_argument("--lr", type=float, default=0.1, help="learning rate (default: 0.1)")
    train.add_argument("--schedule", choices=["step", "constant", "exponential"], default="step",
                       help="step: lr, then lr/10 for the last quarter (default); exponential: lr * 0.95 ** (step // 200)")
    train.add_argument("--seed", type=int, default=42, help="seed of the weights and the minibatches (default: 42)")
    train.add_argument("--samples", type=int, default=20, help="names to sample at the end (default: 20)")
    train.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    train.add_argument("--save", default=None, metavar="PATH", help="write a checkpoint here after training")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    cmp = sub.add_parser("compare", help="run an experiment file: a grid of model variants x seeds",
                         description="Train every variant of an experiment file with every seed, on the same "
                                     "batches per seed; write the results table (CSV, JSON, markdown), the "
                                     "loss plot and each run's checkpoint to a run folder. Run the same "
                                     "command again after an interruption to finish the grid.",
                         epilog="Example: python -m minitorchnn compare experiments/loss_analysis.toml")
    cmp.add_argument("experiment", metavar="EXPERIMENT.toml", help="the experiment file (see experiments/)")
    cmp.add_argument("--out", default=None, help="run folder (default: runs/NAME, NAME from the file)")
    cmp.add_argument("--steps", type=int, default=None, help="override the file's steps (e.g. a quick try)")
    cmp.add_argument("--seeds", type=int, nargs="+", default=None, help="override the file's seeds")
    cmp.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    cmp.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def train(args: argparse.Namespace) -> int:
    block_size = args.block_size or DEFAULT_BLOCK_SIZE[args.model]
    data = names_dataset(block_size=block_size)
    torch.manual_seed(args.seed)
    model = MODELS[args.model](block_size)
    reg = RegisterModel(model, args.model, f"block{block_size}", device=args.device, vocab=data.vocab,
                        block_size=block_size)
    schedule = None if args.schedule == "constant" else args.schedule
    start = time.perf_counter()
    reg.train(*data["train"], steps=args.steps, batch_size=args.batch_size, lr=args.lr, schedule=schedule,
              seed=args.seed, progress=False if args.quiet else None)
    print(f"trained {args.steps} steps in {time.perf_counter() - start:.1f} s on {reg.device}")
    print(reg.split_losses(data))
    print("samples:", ", ".join(reg.sample(args.samples, seed=args.seed)))
    if args.save:
        print(f"checkpoint: {reg.save(args.save)}")
    return 0


def compare(args: argparse.Namespace) -> int:
    from .experiment import ExperimentError, load_experiment

    try:
        experiment = load_experiment(args.experiment)
    except (ExperimentError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out or Path("runs") / experiment.name)
    steps, seeds = args.steps or experiment.steps, args.seeds or list(experiment.seeds)
    print(f"{experiment.name}: {len(experiment.variants)} variants x {len(seeds)} seeds, {steps:,} steps each -> {out}")
    try:
        results = experiment.run(out, steps=steps, seeds=seeds, device=args.device,
                                 progress=False if args.quiet else None)
    except KeyboardInterrupt:
        done = len(list(out.glob("runs/*/*/result.json")))
        print(f"\ninterrupted: {done} finished runs are kept in {out}; run the same command again to finish "
              f"the grid", file=sys.stderr)
        return 130
    except ValueError as err:  # e.g. the folder holds another experiment's runs
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(results)
    import matplotlib

    matplotlib.use("Agg")  # write the PNG without a display
    ax = results.plot()
    ax.set_title(experiment.name)
    ax.figure.savefig(out / "losses.png", dpi=120, bbox_inches="tight")
    print(f"wrote {out}/results.csv, results.json, results.md, losses.png and runs/*/seed-*/checkpoint.pt")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv.insert(0, "train")  # `python -m minitorchnn --model wavenet` means train
    args = build_parser().parse_args(argv)
    return compare(args) if args.command == "compare" else train(args)


if __name__ == "__main__":
    raise SystemExit(main())
