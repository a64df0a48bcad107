"""Command line.

`python -m minitorchnn [train] --model NAME ...` trains a course model: the names models on names.txt,
gpt/wavegpt on Shakespeare or, with --data FILE, on any text file; under torchrun, data parallel.
`python -m minitorchnn compare FILE.toml` runs an experiment grid (variants x seeds) into a run folder.

Every mistake is one line on stderr, `error: ...`, naming the option or file, and exit code 2: before
any training where it can be known then. With --save, a checkpoint is written at every evaluation (a
kill loses at most one interval), on Ctrl-C and at the end; --resume carries on from it.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from .parallel import distributed
from .devices import check_memory, example_bytes, parse_device, threads_for, training_needs
from .train.checkpoint import CheckpointError, check_can_save
from .train.config import ConfigError, TrainConfig
from .data.corpus import shakespeare_dataset, text_dataset
from .data.names import names_dataset
from .fileio import staged
from .models import MODELS, ModelSpec
from .train.loop import Step, TrainingDiverged
from .train.register import RegisterModel

COMMANDS = ("train", "compare")
GPT_OPTIONS = ("n_layer", "n_head", "n_embd", "dropout", "eval_interval")  # what only gpt/wavegpt read


class UsageError(ValueError):
    """A command-line mistake found after parsing (options that do nothing together, say)."""


def _number(kind, low: float, low_ok: bool, what: str, below: float = math.inf):
    """An argparse type: a finite number of kind above low (or at least low when low_ok), below `below`."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or value < low or (value == low and not low_ok) or value >= below:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    return parse


positive_int = _number(int, 1, True, "a whole number >= 1")
count = _number(int, 0, True, "a whole number >= 0")
positive_float = _number(float, 0, False, "a finite number > 0")
seed_number = _number(int, 0, True, "a whole number from 0 to 2**64 - 1", below=2**64)  # what torch can seed
fraction = _number(float, 0, True, "a number in [0, 1)", below=1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m minitorchnn",
        description="Train a course model: the names models on names.txt, gpt/wavegpt on Shakespeare or any text file.",
        epilog="Example: python -m minitorchnn train --model wavenet --steps 200000  (the lecture's full run)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    train = sub.add_parser(
        "train", help="train a model (the default command)",
        description="Train a model, then evaluate, checkpoint (--save) and sample it. mlp, mlp-bn and wavenet "
                    "read names.txt; gpt and wavegpt read shakespeare.txt, or any text file given with --data. "
                    "Under torchrun (torchrun --nproc_per_node=N -m minitorchnn train ...) the batch is split "
                    "over N processes and their gradients are averaged.")
    train.add_argument("--model", choices=list(MODELS), default=None,
                       help="which model to build (default: mlp; gpt with --data)")
    train.add_argument("--data", default=None, metavar="FILE",
                       help="train gpt/wavegpt on this text file (encoded once to FILE.LEVEL.bin, read by memmap)")
    train.add_argument("--level", choices=["char", "byte"], default=None,
                       help="with --data: characters of the file (default), or its bytes (vocabulary 256)")
    train.add_argument("--block-size", type=positive_int, default=None,
                       help="tokens of context (default: 3 for the MLPs, 8 for wavenet, 64 for gpt/wavegpt)")
    train.add_argument("--steps", type=positive_int, default=None,
                       help="training steps (default: 30000 names, 2000 text)")
    train.add_argument("--batch-size", type=positive_int, default=None,
                       help="examples per step over all processes (default: 32 names, 12 text)")
    train.add_argument("--lr", type=positive_float, default=None, help="learning rate (default: 0.1 SGD, 1e-3 AdamW)")
    train.add_argument("--schedule", choices=["step", "constant", "exponential", "cosine"], default=None,
                       help="step: lr, then lr/10 for the last quarter (names default); cosine: linear warmup "
                            "over min(100, steps/10) steps, then a cosine to lr/100, as make_schedule (text default); "
                            "exponential: lr * 0.95 ** (step // 200)")
    train.add_argument("--optimizer", choices=["sgd", "adamw"], default=None,
                       help="sgd (names default; momentum 0.9 for text models) or adamw (text default)")
    train.add_argument("--n-layer", type=positive_int, default=None,
                       help="gpt/wavegpt: transformer blocks (default: 4)")
    train.add_argument("--n-head", type=positive_int, default=None, help="gpt/wavegpt: attention heads (default: 4)")
    train.add_argument("--n-embd", type=positive_int, default=None, help="gpt/wavegpt: embedding width (default: 128)")
    train.add_argument("--dropout", type=fraction, default=None, help="gpt/wavegpt: dropout (default: 0)")
    train.add_argument("--eval-interval", type=positive_int, default=None,
                       help="gpt/wavegpt: print losses every N steps")
    train.add_argument("--sync-batchnorm", action="store_true",
                       help="under torchrun: BatchNorm statistics over all processes' rows together")
    train.add_argument("--seed", type=seed_number, default=42,
                       help="seed of the weights and the minibatches (default: 42)")
    train.add_argument("--samples", type=count, default=20, help="names to sample at the end (default: 20)")
    train.add_argument("--device", default=None,
                       help="cpu, cuda, cuda:1 or mps (default: MINITORCHNN_DEVICE, else cuda when available)")
    train.add_argument("--save", default=None, metavar="PATH",
                       help="write a checkpoint here at every evaluation (every --eval-interval steps for "
                            "gpt/wavegpt, else every tenth of the run), on Ctrl-C and at the end; an existing "
                            "file that is not a minitorchnn checkpoint is refused")
    train.add_argument("--resume", action="store_true",
                       help="with --save: load that checkpoint and train the steps it has not done yet (the same "
                            "options as the run that wrote it)")
    train.add_argument("--threads", type=positive_int, default=None,
                       help="torch's CPU threads (default: OMP_NUM_THREADS, else 1 for the names models and "
                            "torch's default for gpt/wavegpt; see benchmarks/threads.py)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    cmp = sub.add_parser("compare", help="run an experiment file: a grid of model variants x seeds",
                         description="Train every variant of an experiment file with every seed, on the same "
                                     "batches per seed; write the results table (CSV, JSON, markdown), the "
                                     "loss plot and each run's checkpoint to a run folder. Run the same "
                                     "command again after an interruption to finish the grid.",
                         epilog="Example: python -m minitorchnn compare experiments/loss_analysis.toml")
    cmp.add_argument("experiment", metavar="EXPERIMENT.toml", help="the experiment file (see experiments/)")
    cmp.add_argument("--out", default=None, help="run folder (default: runs/NAME, NAME from the file)")
    cmp.add_argument("--steps", type=positive_int, default=None, help="override the file's steps (e.g. a quick try)")
    cmp.add_argument("--seeds", type=seed_number, nargs="+", default=None, help="override the file's seeds")
    cmp.add_argument("--device", default=None, help="cpu, cuda or mps (default: cuda when available)")
    cmp.add_argument("--threads", type=positive_int, default=None,
                     help="torch's CPU threads (default: OMP_NUM_THREADS, else chosen by the largest variant)")
    cmp.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def say(*lines) -> None:
    if distributed.is_main():  # under torchrun only rank 0 prints
        print(*lines, flush=True)


def train_config(args: argparse.Namespace, spec: ModelSpec) -> TrainConfig:
    """The run's TrainConfig: the model's preset (models.MODELS), changed by the options given."""
    given = {k: getattr(args, k) for k in ("steps", "batch_size", "lr", "optimizer", "schedule")
             if getattr(args, k) is not None}
    preset = spec.training
    steps, schedule = given.get("steps", preset.steps), given.get("schedule", preset.schedule)
    warmup = dict(warmup_steps=min(preset.warmup_steps or 100, steps // 10)) if schedule == "cosine" else {}
    text_sgd = dict(momentum=0.9) if spec.data == "text" and given.get("optimizer") == "sgd" else {}
    text = dict(eval_interval=args.eval_interval) if spec.data == "text" else {}
    try:
        return preset.replace(**given, **warmup, **text_sgd, **text, seed=args.seed)
    except ConfigError as err:
        raise UsageError(f"--{err.field.replace('_', '-')}: {err}") from None


def check_options(args: argparse.Namespace, kind: str, spec_batchnorm: bool) -> None:
    """Options that would do nothing here are mistakes, not silently ignored."""
    if args.data and kind != "text":
        raise UsageError(f"--data trains a text model (gpt or wavegpt), not {args.model}")
    if args.level is not None and not args.data:
        raise UsageError("--level chooses how --data FILE is read; without --data it does nothing")
    if kind == "names":
        given = [f"--{k.replace('_', '-')}" for k in GPT_OPTIONS if getattr(args, k) is not None]
        if given:
            raise UsageError(f"{', '.join(given)} set(s) the GPT's shape; {args.model} does not read it")
    if args.sync_batchnorm:
        names = ", ".join(n for n, m in MODELS.items() if m.batchnorm)
        if not spec_batchnorm:
            raise UsageError(f"--sync-batchnorm needs a model with BatchNorm ({names}), not {args.model}")
        if distributed.world_size() == 1:
            raise UsageError("--sync-batchnorm acts under torchrun with several processes; in one process "
                             "BatchNorm already sees the whole batch")
    if args.resume and not args.save:
        raise UsageError("--resume carries on from the --save checkpoint; give --save PATH")
    if args.save:
        check_can_save(args.save)
    if args.resume and not Path(args.save).is_file():
        raise UsageError(f"--resume: {args.save} does not exist yet; train without --resume first")


def train(args: argparse.Namespace) -> int:
    chosen = parse_device(args.device, "--device") if args.device is not None else None  # refused before all else
    device = distributed.init()  # joins torchrun's process group when launched by torchrun
    device = chosen or device
    args.model = args.model or ("gpt" if args.data else "mlp")
    spec = MODELS[args.model]
    try:
        check_options(args, spec.data, spec.batchnorm)
        config = train_config(args, spec)
        block_size = spec.block_size if args.block_size is None else args.block_size
        dataset = load_data(args, spec.data, block_size)
        vocab_size = dataset.vocab_size if spec.data == "text" else len(dataset.vocab)
        shape = {k: v if getattr(args, k) is None else getattr(args, k) for k, v in spec.shape.items()}
        shape = shape if spec.data == "text" else {}
        torch.manual_seed(args.seed)
        model = spec(vocab_size, block_size, **shape)  # a layer too large for the machine is refused as it is built
        example = example_bytes(block_size, vocab_size, sequence=spec.data == "text")
        check_size(args, model.num_parameters(), config, device, example)
        with torch_threads(*threads_for(model.num_parameters(), args.threads)) as threads:
            reg = register(args, model, device, dataset, block_size, spec.data)
            say(f"  {'Training':<14}: {config.describe()}\n  {'Threads':<14}: {threads}")
            return run_training(args, reg, dataset, config, spec.data)
    finally:
        distributed.shutdown()


def load_data(args: argparse.Namespace, kind: str, block_size: int):
    if kind == "names":
        return names_dataset(block_size=block_size)
    return text_dataset(args.data, args.level or "char") if args.data else shakespeare_dataset()


def check_size(args, n_parameters: int, config: TrainConfig, device: torch.device, example: int) -> None:
    """Refuse a run far beyond the device's memory before it allocates its per-step record or its batches,
    naming the option that asks for the most (example: the bytes one example takes)."""
    sizes = [f"--{k.replace('_', '-')}" for k in ("block_size", "n_layer", "n_head", "n_embd")
             if getattr(args, k) is not None]
    model = f"the model ({', '.join(sizes)})" if sizes else "the model"
    check_memory(device, training_needs(n_parameters, config.steps, config.batch_size, example,
                                        names=(model, "--steps", "--batch-size")))


def register(args, model, device: torch.device, dataset, block_size: int, kind: str) -> RegisterModel:
    """The model, registered on its device (from --resume's checkpoint if asked); prints the banner."""
    if args.sync_batchnorm:
        model = distributed.sync_batchnorm(model)
    reg = RegisterModel(model, args.model, f"block{block_size}", device=device, verbose=False,
                        vocab=dataset.vocab, block_size=block_size)
    if args.resume:
        reg.load(args.save)
    if kind == "text":
        say(dataset)
    say(f"Model registered with {reg.n_parameters} Parameters\n{reg.configuration()}")
    return reg


@contextmanager
def torch_threads(n: int, why: str):
    """Run a block with torch on n CPU threads, then put the count back; yields the banner's line."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield f"{n} ({why})"
    finally:
        torch.set_num_threads(before)


def checkpoint_every(reg: RegisterModel, path: str, interval: int, first_step: int = 0):
    """An on_step hook that writes the checkpoint every `interval` steps of the whole run, with the losses
    so far: a killed run loses at most one interval. The last step is left to the final save."""
    losses: list = []
    lrs: list[float] = []
    before = {k: list(v) for k, v in reg.history.items()}  # fit() adds this run's losses only at its end

    def hook(s: Step) -> None:
        losses.append(s.loss.detach())
        lrs.append(s.lr)
        if (first_step + s.step) % interval == 0 and s.step < s.steps:
            now = distributed.average(torch.stack(losses)).tolist()  # every rank calls it at the same step
            reg.save(path, history={"loss": before["loss"] + now, "lr": before["lr"] + lrs})
    return hook


def run_training(args: argparse.Namespace, reg: RegisterModel, dataset, config: TrainConfig, kind: str) -> int:
    """Train (checkpointing as it goes), then checkpoint (before anything else can fail), evaluate, sample."""
    first_step = resume_step(args, reg, config)
    train_options = dict(progress=False if args.quiet else None, first_step=first_step)
    if args.save:
        interval = config.eval_interval or max(1, config.steps // 10)
        train_options["on_step"] = checkpoint_every(reg, args.save, interval, first_step)
    start = time.perf_counter()
    try:
        if kind == "text":
            reg.train_text(dataset, config, block_size=reg.block_size, **train_options)
        else:
            reg.train(*dataset["train"], config, **train_options)
    except KeyboardInterrupt:
        return interrupted(args, reg, config)
    seconds = time.perf_counter() - start
    if args.save:
        say(f"checkpoint: {reg.save(args.save)}")  # every rank calls it: rank 0 writes, the others wait
    report(args, reg, dataset, config, kind, seconds, config.steps - first_step)
    return 0


def resume_step(args: argparse.Namespace, reg: RegisterModel, config: TrainConfig) -> int:
    """The step to carry on from: 0, or with --resume the steps the checkpoint has done."""
    done = len(reg.history["loss"]) if args.resume else 0
    if done >= config.steps:
        raise UsageError(f"--resume: {args.save} has trained {done} steps already, --steps is {config.steps}; "
                         f"give more --steps to train on")
    if done:
        say(f"resuming at step {done} of {config.steps} from {args.save}")
    return done


def interrupted(args: argparse.Namespace, reg: RegisterModel, config: TrainConfig) -> int:
    done = len(reg.history["loss"])
    if args.save:
        path = reg.save(args.save)
        say(f"\ninterrupted after {done} of {config.steps} steps: saved the model trained so far to {path}")
    else:
        say(f"\ninterrupted after {done} of {config.steps} steps: nothing was saved (no --save given)")
    return 130


def report(args, reg: RegisterModel, dataset, config: TrainConfig, kind: str, seconds: float, steps: int) -> None:
    """What the run did: its speed, then the losses and samples (names) or a sample of text."""
    where = f"{reg.device}" + (f" x {distributed.world_size()} processes" if distributed.world_size() > 1 else "")
    if kind == "text":
        tokens = steps * config.batch_size * reg.block_size
        say(f"trained {steps} steps in {seconds:.1f} s on {where}: {tokens / seconds:,.0f} tokens/s")
        out = reg.model.generate(torch.zeros(1, 1, dtype=torch.long, device=reg.device), 200, seed=args.seed)
        say("sample:", repr(dataset.decode(out[0].tolist()[1:])))
    else:
        say(f"trained {steps} steps in {seconds:.1f} s on {where}")
        say(reg.split_losses(dataset))
        if args.samples:
            say("samples:", ", ".join(reg.sample(args.samples, seed=args.seed)))


def compare(args: argparse.Namespace) -> int:
    from .lab.experiment import load_experiment

    device = parse_device(args.device, "--device") if args.device is not None else None
    experiment = load_experiment(args.experiment)
    out = Path(args.out or Path("runs") / experiment.name)
    steps = experiment.steps if args.steps is None else args.steps
    seeds = list(experiment.seeds) if args.seeds is None else args.seeds
    with torch.random.fork_rng(devices=[]):  # the thread count suits the largest variant
        largest = max(variant.build().num_parameters() for variant in experiment.variants.values())
    with torch_threads(*threads_for(largest, args.threads)) as threads:
        print(f"{experiment.name}: {len(experiment.variants)} variants x {len(seeds)} seeds, {steps:,} steps each "
              f"-> {out}; threads: {threads}")
        try:
            results = experiment.run(out, steps=steps, seeds=seeds, device=device,
                                     progress=False if args.quiet else None)
        except KeyboardInterrupt:
            done = len(list(out.glob("runs/*/*/result.json")))
            print(f"\ninterrupted: {done} finished runs are kept in {out}; run the same command again to finish "
                  f"the grid", file=sys.stderr)
            return 130
    print(results)
    plot(results, experiment.name, out / "losses.png")
    print(f"wrote {out}/results.csv, results.json, results.md, losses.png and runs/*/seed-*/checkpoint.pt")
    return 0


def plot(results, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # write the PNG without a display
    ax = results.plot()
    ax.set_title(title)
    with staged(path) as tmp:
        ax.figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv.insert(0, "train")  # `python -m minitorchnn --model wavenet` means train
    args = build_parser().parse_args(argv)  # a malformed option: argparse's usage line and exit 2
    try:
        return compare(args) if args.command == "compare" else train(args)
    except (ValueError, TypeError, OSError, KeyError, FloatingPointError) as err:
        # ConfigError, CheckpointError, ExperimentError, UsageError, TrainingDiverged, missing data, ...
        message = str(err).strip().strip("'\"") if isinstance(err, KeyError) else str(err).strip()
        if isinstance(err, TrainingDiverged):
            message += "; nothing was saved"
        print(f"error: {message.splitlines()[0] if isinstance(err, CheckpointError) else message}",
              file=sys.stderr)
        return 2
