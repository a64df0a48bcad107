"""RegisterModel: the lectures' front to training. It registers a model on a device, prints its summary,
trains it with fit() (loop.py), evaluates, samples, plots and checkpoints it.

    reg = mtn.RegisterModel(model, "wavenet", "v1", vocab=data.vocab, block_size=8)
    reg.train(*data["train"], steps=20_000, lr=0.1, schedule="step", seed=0, on_step=mtn.print_every(5000))
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ..data.corpus import ByteVocab
from ..data.vocab import CharVocab
from ..devices import check_memory, default_device, example_bytes, parse_device, training_needs
from ..nn.layers import Sequential
from ..nn.module import Module, inference
from ..nn.optim import OPTIMIZERS, Optimizer, make_schedule
from ..parallel import distributed
from .checkpoint import FORMAT, CheckpointError, architecture, read_checkpoint, save_checkpoint
from .config import GPT_ADAMW, TrainConfig
from .evaluation import LossTable, estimate_loss, evaluate, split_losses
from .loop import LossLog, as_hooks, fit
from .sampling import sample_names


class RegisterModel:
    """The trainer, under the lectures' name: registers a model with its name and version on a device,
    prints its summary, trains it (hand-written SGD or AdamW), evaluates, samples, plots and checkpoints it.

    Each method is a thin front: the loop is fit(), the rest lives in evaluation.py, sampling.py and
    checkpoint.py.
    """

    def __init__(self, model: Module, model_name: str, model_version: str = "v1",
                 device: torch.device | str | None = None, vocab: CharVocab | None = None,
                 block_size: int | None = None, verbose: bool = True) -> None:
        if not isinstance(model, Module):
            raise TypeError(f"RegisterModel expected a minitorchnn Module, got {type(model).__name__}")
        self.model_name, self.model_version = model_name, model_version
        self.device = parse_device(device) if device is not None else default_device()
        if self.device.type == "cuda" and self.device.index is None:  # "cuda" means the current GPU
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.model = model.to(self.device)  # the one move of the model
        if distributed.world_size() > 1:  # data parallel: every rank starts from rank 0's weights
            distributed.broadcast_parameters(self.model)
        self.vocab, self.block_size = vocab, block_size
        self.optimizer: Optimizer | None = None  # chosen by the first train()
        self.history: dict[str, list[float]] = {"loss": [], "lr": []}
        self.n_parameters = self.model.num_parameters()
        if verbose and distributed.is_main():
            print(f"Model registered with {self.n_parameters} Parameters")
            print(self.configuration())

    def configuration(self) -> str:
        rows = [("Model name", self.model_name), ("Model version", self.model_version),
                ("Device", str(self.device)), ("Layers", str(len(self._layers()))),
                ("Parameters", f"{self.n_parameters:,}")]
        if self.optimizer is not None:  # known once train() has chosen it
            rows.append(("Optimiser", repr(self.optimizer)))
        if self.block_size is not None:
            rows.append(("Block size", str(self.block_size)))
        if self.vocab is not None:
            rows.append(("Vocabulary", f"{len(self.vocab)} characters"))
        return "\n".join(f"  {k:<14}: {v}" for k, v in rows)

    def __repr__(self) -> str:
        return (f"RegisterModel({self.model_name!r}, {self.model_version!r}, {self.n_parameters:,} parameters, "
                f"device={self.device})")

    def _layers(self) -> list[Module]:
        return list(self.model.layers) if isinstance(self.model, Sequential) else self.model.children()

    def summary(self, x: Tensor | None = None) -> None:
        """Print every layer with its output shape from a dry run, its parameter count, and the total."""
        if x is None:
            if self.block_size is None:
                raise ValueError("summary() needs an example input x, or a block_size given to RegisterModel")
            x = torch.zeros(4, self.block_size, dtype=torch.long)
        rows = [("Layer", "Output shape", "Params")]
        with inference(self.model):  # a dry run must not touch BatchNorm's running statistics
            out = x.to(self.device)
            sequential = isinstance(self.model, Sequential)
            for i, layer in enumerate(self._layers()):
                shape = "-"
                if sequential:
                    out = layer(out)
                    shape = str(tuple(out.shape))
                rows.append((f"{i}: {layer!r}".split("\n")[0], shape, f"{layer.num_parameters():,}"))
            if not sequential:
                rows.append(("output", str(tuple(self.model(x.to(self.device)).shape)), ""))
        rows.append(("Total", "", f"{self.n_parameters:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}" for a, b, c in rows]
        rule = "-" * len(lines[0])
        print("\n".join([lines[0], rule, *lines[1:-1], rule, lines[-1]]))

    # --- training -----------------------------------------------------------------------------
    def optimizer_for(self, config: TrainConfig) -> Optimizer:
        """The optimiser config asks for; its state (momentum, Adam moments) carries over between train()
        calls as long as its kind stays the same."""
        kind = OPTIMIZERS[config.optimizer]
        if not isinstance(self.optimizer, kind):
            self.optimizer = kind(self.model.parameters(), lr=config.lr)
        self.optimizer.lr, self.optimizer.weight_decay = config.lr, config.weight_decay
        if config.optimizer == "sgd":
            self.optimizer.momentum = config.momentum
        else:
            self.optimizer.betas = config.betas
        return self.optimizer

    def train(self, x: Tensor, y: Tensor, config: TrainConfig | None = None, *, on_step=None,
              progress: bool | None = None, first_step: int = 0, **settings) -> dict:
        """Train on random minibatches of (x, y); returns this run's loss and lr per step.

        Settings come as a TrainConfig, or as its fields by name (steps=, lr=, schedule=, seed=, ...), or
        both (the names override). With a seed, the minibatches come from their own generator, so two
        runs with the same seed and initial weights are identical. on_step(Step) runs after every update.
        first_step > 0 continues a run of config.steps that stopped there (after load()): the minibatches
        and the learning rate go on as they would have.
        """
        config = (config or TrainConfig()).replace(**settings)
        if len(x) != len(y):
            raise ValueError(f"train got {len(x)} inputs but {len(y)} targets")
        if len(x) == 0:
            raise ValueError(f"train got no examples: x has shape {tuple(x.shape)}")
        self._check_memory(config, x[0].numel(), sequence=False)
        x, y = x.to(self.device), y.to(self.device)  # the one move of the data
        generator = torch.Generator(device=self.device).manual_seed(config.seed) if config.seed is not None else None
        mine = distributed.shard(config.batch_size)  # all rows with one process; this rank's slice under torchrun

        def next_batch() -> tuple[Tensor, Tensor]:
            # every rank draws the same global batch of indices and keeps its own slice of it
            ix = torch.randint(0, len(x), (config.batch_size,), device=self.device, generator=generator)[mine]
            return x[ix], y[ix]

        rest = _continue_at(config, first_step, next_batch)
        return fit(self.model, self.optimizer_for(rest), next_batch, rest, as_hooks(on_step),
                   LossLog(rest.steps, self.model_name, self.history, progress))

    def _check_memory(self, config: TrainConfig, block_size: int, sequence: bool) -> None:
        """Refuse steps or a batch_size far beyond the device's memory before anything is allocated."""
        vocab_size = len(self.vocab) if self.vocab is not None else 0
        check_memory(self.device, training_needs(self.n_parameters, config.steps, config.batch_size,
                                                 example_bytes(block_size, vocab_size, sequence)))

    def train_text(self, dataset, config: TrainConfig | None = None, *, block_size: int | None = None,
                   on_step=None, progress: bool | None = None, log: bool = True, first_step: int = 0,
                   **settings) -> dict:
        """Train a sequence model on random windows of a text corpus (AdamW, clip 1.0 unless told otherwise).

        Every eval_interval steps, and at the end, estimate_loss() is kept in run["eval"] as
        (step, train, val), and printed if log. first_step: as in train().
        """
        config = (config or GPT_ADAMW).replace(**settings)
        block_size = self._text_block_size(dataset, block_size)
        self._check_memory(config, block_size, sequence=True)
        generator = torch.Generator().manual_seed(config.seed) if config.seed is not None else None
        mine = distributed.shard(config.batch_size)
        evals: list[tuple[int, float, float]] = []

        def next_batch() -> tuple[Tensor, Tensor]:
            xb, yb = dataset.get_batch("train", config.batch_size, block_size, generator=generator, device=self.device)
            return xb[mine], yb[mine]  # this rank's rows of the global batch

        def evaluate_now(step: int) -> None:
            losses = estimate_loss(self.model, dataset, config.eval_iters, config.batch_size, block_size)
            evals.append((step, losses["train"], losses["val"]))
            if log and distributed.is_main():
                print(f"step {step:>6}: train {losses['train']:.4f}  val {losses['val']:.4f}")

        hooks = as_hooks(on_step)
        if config.eval_interval:
            hooks.append(lambda s: evaluate_now(first_step + s.step)  # a resumed run counts on from first_step
                         if (first_step + s.step) % config.eval_interval == 0 else None)
        rest = _continue_at(config, first_step, next_batch)
        run = fit(self.model, self.optimizer_for(rest), next_batch, rest, hooks,
                  LossLog(rest.steps, self.model_name, self.history, progress))
        if not evals or evals[-1][0] != config.steps:
            evaluate_now(config.steps)
        run["eval"] = evals
        return run

    def _text_block_size(self, dataset, block_size: int | None) -> int:
        """The block size to train on (given, registered, or the model's), if both splits have windows of it."""
        block_size = block_size or self.block_size or getattr(self.model, "block_size", None)
        if block_size is None:
            raise ValueError("train_text needs a block_size (pass it, or give it to RegisterModel)")
        for split in ("train", "val"):  # refused now, not after training when the losses are estimated
            if dataset.split_length(split) <= block_size:
                raise ValueError(f"the {split} split of {dataset!r} has {dataset.split_length(split)} tokens, "
                                 f"too few for windows of block_size={block_size}")
        return block_size

    # --- evaluation, sampling, plots ------------------------------------------------------------
    def estimate_loss(self, dataset, eval_iters: int, batch_size: int, block_size: int,
                      seed: int = 1337) -> dict[str, float]:
        """Mean loss over eval_iters batches of each split (see evaluation.estimate_loss)."""
        return estimate_loss(self.model, dataset, eval_iters, batch_size, block_size, seed)

    def evaluate(self, x: Tensor, y: Tensor, batch_size: int = 16384) -> float:
        """Mean cross entropy over all of (x, y), in eval mode and without gradients."""
        return evaluate(self.model, x, y, batch_size)

    def split_losses(self, splits: dict[str, tuple[Tensor, Tensor]]) -> LossTable:
        """The loss on each split, as a one-row LossTable: model, version, train, val, test."""
        return split_losses(self.model, splits, self.model_name, self.model_version)

    def sample(self, n: int, vocab: CharVocab | None = None, block_size: int | None = None,
               seed: int | None = None, max_len: int = 50) -> list[str]:
        """Generate n names, one character at a time, until each one draws '.' (id 0)."""
        vocab, block_size = vocab or self.vocab, block_size or self.block_size
        if vocab is None or block_size is None:
            raise ValueError("sample() needs a vocab and a block_size (pass them, or give them to RegisterModel)")
        return sample_names(self.model, vocab, block_size, n, seed, max_len)

    def plot_losses(self, window: int | None = None, ax=None):
        """Plot the training loss averaged over windows of steps (the lecture's view(-1, k).mean(1))."""
        import matplotlib.pyplot as plt

        losses = torch.tensor(self.history["loss"])
        if len(losses) == 0:
            raise ValueError("plot_losses: nothing to plot yet, train the model first")
        k = window or max(1, len(losses) // 200)
        n = len(losses) // k * k  # drop the last partial window so view(-1, k) fits
        curve = losses[:n].view(-1, k).mean(1)
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        ax.plot(torch.arange(len(curve)) * k + k / 2, curve, label=f"{self.model_name} {self.model_version}")
        ax.set_xlabel("step")
        ax.set_ylabel(f"training loss (mean of {k} steps)")
        ax.legend()
        return ax

    # --- checkpoints --------------------------------------------------------------------------
    def architecture(self) -> list[tuple[str, tuple[int, ...]]]:
        return architecture(self.model)

    def save(self, path: str | Path, history: dict | None = None) -> Path:
        """Checkpoint model, optimiser, vocab and history (default: self.history) atomically (see
        checkpoint.py). Under data parallelism only rank 0 writes (every rank holds the same weights)."""
        path = Path(path)
        if not distributed.is_main():
            distributed.barrier()  # wait until rank 0 has written it
            return path
        try:
            return save_checkpoint(path, {
                "format": FORMAT, "model_name": self.model_name, "model_version": self.model_version,
                "model_repr": repr(self.model), "architecture": self.architecture(),
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
                "optimizer_type": type(self.optimizer).__name__ if self.optimizer is not None else None,
                "vocab": _vocab_state(self.vocab), "block_size": self.block_size,
                "history": self.history if history is None else history,
            }, self.model)
        finally:
            distributed.barrier()  # the other ranks wait in save() until the file is whole

    def load(self, path: str | Path) -> RegisterModel:
        """Restore a checkpoint written by save(); a wrong or damaged file is refused, the model untouched."""
        contents, optimizer = read_checkpoint(path, self.model, self.device)
        saved, ours = contents["vocab"], _vocab_state(self.vocab)
        if saved is not None and ours is not None and saved != ours:
            raise CheckpointError(f"{path}: saved with a vocabulary of {_describe(saved)}, but this model's data has "
                                  f"{_describe(ours)}: it would decode the wrong characters")
        self.model.load_state_dict(contents["model"])  # everything was checked: this cannot fail half-way
        self.optimizer = optimizer
        self.history = {k: list(v) for k, v in contents["history"].items()}
        if saved is not None:
            self.vocab = ByteVocab() if saved == "bytes" else CharVocab(saved)
        self.block_size = contents["block_size"]
        return self


def _vocab_state(vocab) -> list[str] | str | None:
    """A vocabulary as a checkpoint stores it: its characters, or "bytes" for the 256 byte values."""
    if vocab is None:
        return None
    return "bytes" if vocab.itos is None else list(vocab.itos)


def _describe(state: list[str] | str) -> str:
    return "the 256 byte values" if state == "bytes" else f"{len(state)} characters {''.join(state)[:40]!r}"


def _continue_at(config: TrainConfig, first_step: int, next_batch) -> TrainConfig:
    """The config of the steps after first_step of a run of config.steps: the batches drawn before are
    drawn again (and dropped) and the learning rate schedule goes on from there."""
    if not isinstance(first_step, int) or not 0 <= first_step < config.steps:
        raise ValueError(f"first_step must be a whole number in [0, steps={config.steps}), got {first_step!r}")
    if first_step == 0:
        return config
    for _ in range(first_step):
        next_batch()  # the seeded generator moves on as it did in the steps already trained
    full = make_schedule(config.schedule, config.lr, config.steps, config.warmup_steps, config.final_lr)
    return config.replace(steps=config.steps - first_step, schedule=lambda i: full(first_step + i))
