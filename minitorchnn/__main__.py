"""Command line.

`python -m minitorchnn [train] --model NAME ...` trains a course model: the names models on names.txt,
gpt/wavegpt on Shakespeare or, with --data FILE, on any text file; under torchrun, data parallel.
`python -m minitorchnn compare FILE.toml` runs an experiment grid (variants x seeds) into a run folder.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from . import distributed
from .corpus import text_dataset
from .data import names_dataset, shakespeare_dataset
from .gpt import GPT
from .models import DEFAULT_BLOCK_SIZE, MODELS
from .optim import WarmupCosine
from .training import RegisterModel
from .wavegpt import WaveGPT

COMMANDS = ("train", "compare")


TEXT_MODELS = ("gpt", "wavegpt")
SYNC_BATCHNORM_MODELS = ("mlp-bn", "wavenet")
NAMES_DEFAULTS = dict(steps=30_000, batch_size=32, lr=0.1, optimizer="sgd")
TEXT_DEFAULTS = dict(steps=2_000, batch_size=12, lr=1e-3, optimizer="adamw", block_size=64)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m minitorchnn",
        description="Train a course model: the names models on names.txt, gpt/wavegpt on Shakespeare or any text file.",
        epilog="Example: python -m minitorchnn train --model wavenet --steps 200000  (the lecture's full run)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    train = sub.add_parser(
        "train", help="train a model (the default command)",
        description="Train a model, then evaluate and sample it. mlp, mlp-bn and wavenet read names.txt; gpt "
                    "and wavegpt read shakespeare.txt, or any text file given with --data. Under torchrun "
                    "(torchrun --nproc_per_node=N -m minitorchnn train ...) the batch is split over N "
                    "processes and their gradients are averaged.")
    train.add_argument("--model", choices=sorted(MODELS) + list(TEXT_MODELS), default=None,
                       help="which model to build (default: mlp; gpt with --data)")
    train.add_argument("--data", default=None, metavar="FILE",
                       help="train gpt/wavegpt on this text file (encoded once to FILE.LEVEL.bin, read by memmap)")
    train.add_argument("--level", choices=["char", "byte"], default="char",
                       help="with --data: characters of the file, or its bytes (vocabulary 256)")
    train.add_argument("--block-size", type=int, default=None,
                       help="tokens of context (default: 3 for the MLPs, 8 for wavenet, 64 for gpt/wavegpt)")
    train.add_argument("--steps", type=int, default=None, help="training steps (default: 30000 names, 2000 text)")
    train.add_argument("--batch-size", type=int, default=None,
                       help="examples per step over all processes (default: 32 names, 12 text)")
    train.add_argument("--lr", type=float, default=None, help="learning rate (default: 0.1 SGD, 1e-3 AdamW)")
    train.add_argument("--schedule", choices=["step", "constant", "exponential", "cosine"], default=None,
                       help="step: lr, then lr/10 for the last quarter (names default); cosine: warmup + "
                            "cosine to lr/10 (text default); exponential: lr * 0.95 ** (step // 200)")
    train.add_argument("--optimizer", choices=["sgd", "adamw"], default=None,
                       help="sgd (names default; momentum 0.9 for text models) or adamw (text default)")
    train.add_argument("--n-layer", type=int, default=4, help="gpt/wavegpt: transformer blocks (default: 4)")
    train.add_argument("--n-head", type=int, default=4, help="gpt/wavegpt: attention heads (default: 4)")
    train.add_argument("--n-embd", type=int, default=128, help="gpt/wavegpt: embedding width (default: 128)")
    train.add_argument("--dropout", type=float, default=0.0, help="gpt/wavegpt: dropout (default: 0)")
    train.add_argument("--eval-interval", type=int, default=None, help="gpt/wavegpt: print losses every N steps")
    train.add_argument("--sync-batchnorm", action="store_true",
                       help="under torchrun: BatchNorm statistics over all processes' rows together")
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
    device = distributed.init()  # joins torchrun's process group when launched by torchrun
    if args.device is not None:
        device = torch.device(args.device)
    model_name = args.model or ("gpt" if args.data else "mlp")
    if args.data and model_name not in TEXT_MODELS:
        print(f"error: --data trains a text model (gpt or wavegpt), not {model_name}", file=sys.stderr)
        return 2
    try:
        run = train_text_model if model_name in TEXT_MODELS else train_names_model
        return run(args, model_name, device)
    finally:
        distributed.shutdown()


def say(*lines) -> None:
    if distributed.is_main():  # under torchrun only rank 0 prints
        print(*lines)


def with_defaults(args: argparse.Namespace, defaults: dict) -> dict:
    """The options of `defaults` as given on the command line, or their defaults where not given."""
    return {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in defaults.items()}


def where(reg: RegisterModel) -> str:
    """'cpu', or 'cpu x 2 processes' under torchrun."""
    world = distributed.world_size()
    return f"{reg.device}" + (f" x {world} processes" if world > 1 else "")


def save_if_asked(reg: RegisterModel, args: argparse.Namespace) -> None:
    if args.save:
        path = reg.save(args.save)  # every rank calls it: rank 0 writes, the others wait
        say(f"checkpoint: {path}")


def train_names_model(args: argparse.Namespace, model_name: str, device: torch.device) -> int:
    settings = with_defaults(args, NAMES_DEFAULTS)
    block_size = args.block_size or DEFAULT_BLOCK_SIZE[model_name]
    data = names_dataset(block_size=block_size)
    torch.manual_seed(args.seed)
    model = MODELS[model_name](block_size)
    if args.sync_batchnorm:
        if model_name not in SYNC_BATCHNORM_MODELS:
            print(f"error: --sync-batchnorm needs a model with BatchNorm ({', '.join(SYNC_BATCHNORM_MODELS)}), "
                  f"not {model_name}", file=sys.stderr)
            return 2
        model = distributed.sync_batchnorm(model)
    reg = RegisterModel(model, model_name, f"block{block_size}", device=device, vocab=data.vocab,
                        block_size=block_size)
    schedule = {None: "step", "constant": None}.get(args.schedule, args.schedule)
    start = time.perf_counter()
    reg.train(*data["train"], steps=settings["steps"], batch_size=settings["batch_size"], lr=settings["lr"],
              schedule=schedule, optimizer=settings["optimizer"], seed=args.seed,
              progress=False if args.quiet else None)
    say(f"trained {settings['steps']} steps in {time.perf_counter() - start:.1f} s on {where(reg)}")
    table = reg.split_losses(data)
    say(table)
    samples = reg.sample(args.samples, seed=args.seed)
    say("samples:", ", ".join(samples))
    save_if_asked(reg, args)
    return 0


def train_text_model(args: argparse.Namespace, model_name: str, device: torch.device) -> int:
    settings = with_defaults(args, TEXT_DEFAULTS)
    dataset = text_dataset(args.data, args.level) if args.data else shakespeare_dataset()
    say(dataset)
    torch.manual_seed(args.seed)
    kind = GPT if model_name == "gpt" else WaveGPT
    model = kind(dataset.vocab_size, settings["block_size"], args.n_embd, args.n_head, args.n_layer, args.dropout)
    reg = RegisterModel(model, model_name, f"block{settings['block_size']}", device=device, verbose=False)
    steps, lr = settings["steps"], settings["lr"]
    reg.set_optimizer(settings["optimizer"], lr)  # so that the configuration shows the optimiser it trains with
    say(f"Model registered with {reg.n_parameters} Parameters\n{reg.configuration()}")
    schedule = {None: WarmupCosine(steps, lr, warmup_steps=min(100, steps // 10), min_lr=lr / 10),
                "constant": None}.get(args.schedule, args.schedule)
    start = time.perf_counter()
    reg.train_text(dataset, steps, settings["batch_size"], settings["block_size"], lr=lr, schedule=schedule,
                   optimizer=settings["optimizer"], momentum=0.9 if settings["optimizer"] == "sgd" else 0.0,
                   clip=1.0, seed=args.seed, eval_interval=args.eval_interval, eval_iters=50,
                   progress=False if args.quiet else None)
    seconds = time.perf_counter() - start
    tokens = steps * settings["batch_size"] * settings["block_size"]
    say(f"trained {steps} steps in {seconds:.1f} s on {where(reg)}: {tokens / seconds:,.0f} tokens/s")
    out = model.generate(torch.zeros(1, 1, dtype=torch.long, device=reg.device), 200,
                         generator=torch.Generator(device=reg.device).manual_seed(args.seed))
    say("sample:", repr(dataset.decode(out[0].tolist()[1:])))
    save_if_asked(reg, args)
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
