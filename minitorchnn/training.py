"""RegisterModel: registers a model, prints its summary, trains it with the hand-written SGD, evaluates,
samples, plots and checkpoints it."""
from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from . import distributed
from .data import CharVocab, TokenCorpus
from .layers import Sequential
from .loss import cross_entropy
from .module import Module, inference
from .optim import SGD, AdamW, Constant, ExponentialDecay, StepDecay, WarmupCosine, clip_grad_norm

CHECKPOINT_FORMAT = 1


def default_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def progress_enabled(progress: bool | None, steps: int) -> bool:
    """Show a progress bar for long runs, except under CI=true or MINITORCHNN_PROGRESS=0."""
    if progress is not None:
        return progress
    quiet = os.environ.get("CI", "").lower() in ("1", "true", "yes") or os.environ.get("MINITORCHNN_PROGRESS") == "0"
    return steps >= 1000 and not quiet


class LossTable:
    """Rows of losses per split, printed as an aligned table (the seed notebook's "Loss Analysis")."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows

    @property
    def columns(self) -> list[str]:
        cols: list[str] = []
        for row in self.rows:
            cols += [c for c in row if c not in cols]
        return cols

    def __add__(self, other: LossTable) -> LossTable:
        return LossTable(self.rows + other.rows)

    def __getitem__(self, key: str) -> float:
        """For a one-row table, the loss of a split: table["val"]."""
        if len(self.rows) != 1:
            raise KeyError("index a LossTable by split only when it has one row; use .rows")
        return self.rows[0][key]

    def _cells(self) -> list[list[str]]:
        fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
        return [[fmt(row.get(c, "")) for c in self.columns] for row in self.rows]

    def to_markdown(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(cells) + " |" for cells in self._cells()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        table = [self.columns] + self._cells()
        widths = [max(len(r[i]) for r in table) for i in range(len(self.columns))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


class RegisterModel:
    """Wraps a model with its name and version; trains it (hand-written SGD or AdamW) on one device,
    evaluates, samples, plots and checkpoints it."""

    def __init__(self, model: Module, model_name: str, model_version: str = "v1",
                 device: torch.device | str | None = None, vocab: CharVocab | None = None,
                 block_size: int | None = None, verbose: bool = True) -> None:
        self.model_name, self.model_version = model_name, model_version
        self.device = torch.device(device) if device is not None else default_device()
        if self.device.type == "cuda" and self.device.index is None:  # "cuda" means the current GPU
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.model = model.to(self.device)  # the one move of the model
        if distributed.world_size() > 1:  # data parallel: every rank starts from rank 0's weights
            distributed.broadcast_parameters(self.model)
        self.vocab, self.block_size = vocab, block_size
        self.optimizer = SGD(self.model.parameters(), lr=0.1)
        self.history: dict[str, list[float]] = {"loss": [], "lr": []}
        self.n_parameters = self.model.num_parameters()
        if verbose and distributed.is_main():
            print(f"Model registered with {self.n_parameters} Parameters")
            print(self.configuration())

    def configuration(self) -> str:
        rows = [("Model name", self.model_name), ("Model version", self.model_version),
                ("Device", str(self.device)), ("Layers", str(len(self._layers()))),
                ("Parameters", f"{self.n_parameters:,}"), ("Optimiser", repr(self.optimizer))]
        if self.block_size is not None:
            rows.append(("Block size", str(self.block_size)))
        if self.vocab is not None:
            rows.append(("Vocabulary", f"{len(self.vocab)} characters"))
        return "\n".join(f"  {k:<14}: {v}" for k, v in rows)

    def __repr__(self) -> str:
        return f"RegisterModel({self.model_name!r}, {self.model_version!r}, {self.n_parameters:,} parameters, device={self.device})"

    def _layers(self) -> list[Module]:
        return list(self.model.layers) if isinstance(self.model, Sequential) else self.model.children()

    def _to_device(self, t: Tensor) -> Tensor:
        return t if t.device == self.device else t.to(self.device)

    # --- summary ------------------------------------------------------------------------------
    def summary(self, x: Tensor | None = None) -> None:
        """Print every layer with its output shape from a dry run, its parameter count, and the total."""
        if x is None:
            if self.block_size is None:
                raise ValueError("summary() needs an example input x, or a block_size given to RegisterModel")
            x = torch.zeros(4, self.block_size, dtype=torch.long)
        rows = [("Layer", "Output shape", "Params")]
        with inference(self.model):  # a dry run must not touch BatchNorm's running statistics
            out = self._to_device(x)
            layers = self._layers()
            sequential = isinstance(self.model, Sequential)
            for i, layer in enumerate(layers):
                shape = "-"
                if sequential:
                    out = layer(out)
                    shape = str(tuple(out.shape))
                rows.append((f"{i}: {layer!r}".split("\n")[0], shape, f"{layer.num_parameters():,}"))
            if not sequential:
                rows.append(("output", str(tuple(self.model(self._to_device(x)).shape)), ""))
        rows.append(("Total", "", f"{self.n_parameters:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}" for a, b, c in rows]
        rule = "-" * len(lines[0])
        print("\n".join([lines[0], rule, *lines[1:-1], rule, lines[-1]]))

    # --- training -----------------------------------------------------------------------------
    def _schedule(self, schedule, lr: float, steps: int):
        if schedule is None:
            return Constant(lr)
        if schedule == "step":
            return StepDecay(steps, lr=lr, final_lr=lr / 10)
        if schedule == "exponential":
            return ExponentialDecay(lr)
        if schedule == "cosine":
            return WarmupCosine(steps, lr)
        if callable(schedule):
            return schedule
        raise ValueError(f"schedule must be None, 'step', 'exponential', 'cosine' or a function of the step, got {schedule!r}")

    def set_optimizer(self, optimizer: str = "sgd", lr: float = 0.1, momentum: float = 0.0,
                      weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999)) -> SGD | AdamW:
        """Use the hand-written SGD or AdamW; the state (momentum, Adam moments) carries over between
        train() calls as long as the kind of optimiser stays the same."""
        params = self.model.parameters()
        if optimizer == "sgd":
            if not isinstance(self.optimizer, SGD):
                self.optimizer = SGD(params, lr=lr)
            self.optimizer.momentum = momentum
        elif optimizer == "adamw":
            if not isinstance(self.optimizer, AdamW):
                self.optimizer = AdamW(params, lr=lr, weight_decay=weight_decay)
            self.optimizer.betas = tuple(betas)
        else:
            raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {optimizer!r}")
        self.optimizer.lr, self.optimizer.weight_decay = lr, weight_decay
        return self.optimizer

    def train(self, x: Tensor, y: Tensor, steps: int, batch_size: int = 32, lr: float = 0.1, schedule=None,
              momentum: float = 0.0, weight_decay: float = 0.0, seed: int | None = None,
              progress: bool | None = None, log_every: int | None = None, check_every: int = 100,
              optimizer: str = "sgd", clip: float | None = None, callback=None) -> dict:
        """Train on random minibatches of (x, y) for `steps` steps; returns this run's loss and lr per step.

        `schedule` is None (constant lr), 'step' (lr, then lr/10 for the last quarter), 'exponential'
        (lr * 0.95 ** (step // 200)), 'cosine' (from lr down to lr/100) or any function step -> lr.
        With `seed`, the minibatches are drawn from their own generator, so two runs with the same seed
        and initial weights are identical. `callback(step, optimizer)`, if given, runs after every update
        (diagnostics.UpdateRatioTracker is one).
        """
        if len(x) != len(y):
            raise ValueError(f"train got {len(x)} inputs but {len(y)} targets")
        if batch_size < 1:
            raise ValueError(f"train expected batch_size >= 1, got {batch_size}")
        x, y = self._to_device(x), self._to_device(y)  # the one move of the data
        generator = torch.Generator(device=self.device).manual_seed(seed) if seed is not None else None
        mine = distributed.shard(batch_size)  # all rows with one process; this rank's slice under torchrun

        def next_batch() -> tuple[Tensor, Tensor]:
            # every rank draws the same global batch of indices and keeps its own slice of it
            ix = torch.randint(0, len(x), (batch_size,), device=self.device, generator=generator)[mine]
            return x[ix], y[ix]

        return self._run(next_batch, steps, lr, schedule, optimizer, momentum, weight_decay, clip,
                         progress, log_every, check_every, callback=callback)

    def train_text(self, dataset: TokenCorpus, steps: int, batch_size: int, block_size: int, lr: float = 1e-3,
                   schedule=None, optimizer: str = "adamw", momentum: float = 0.0, weight_decay: float = 0.0,
                   betas: tuple[float, float] = (0.9, 0.999), clip: float | None = 1.0, seed: int | None = None,
                   eval_interval: int | None = None, eval_iters: int = 50, progress: bool | None = None,
                   check_every: int = 100, log: bool = True) -> dict:
        """Train a sequence model on random windows of a text corpus; every eval_interval steps (and at
        the end) estimate_loss() is kept in run["eval"] as (step, train, val), and printed if log."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        evals: list[tuple[int, float, float]] = []
        mine = distributed.shard(batch_size)

        def next_batch() -> tuple[Tensor, Tensor]:
            xb, yb = dataset.get_batch("train", batch_size, block_size, generator=generator, device=self.device)
            return xb[mine], yb[mine]  # this rank's rows of the global batch

        def evaluate(step: int) -> None:
            losses = self.estimate_loss(dataset, eval_iters, batch_size, block_size)
            evals.append((step, losses["train"], losses["val"]))
            if log and distributed.is_main():
                print(f"step {step:>6}: train {losses['train']:.4f}  val {losses['val']:.4f}")

        run = self._run(next_batch, steps, lr, schedule, optimizer, momentum, weight_decay, clip, progress,
                        None, check_every, on_step=evaluate if eval_interval else None, every=eval_interval,
                        betas=betas)
        if not evals or evals[-1][0] != steps:
            evaluate(steps)
        run["eval"] = evals
        return run

    def estimate_loss(self, dataset: TokenCorpus, eval_iters: int, batch_size: int, block_size: int,
                      seed: int = 1337) -> dict[str, float]:
        """Mean loss over eval_iters batches of each split, drawn from a fixed seed so that every model
        is scored on the same batches; eval mode, no gradients, the mode restored."""
        out = {}
        with inference(self.model):
            for split in ("train", "val"):
                generator = torch.Generator().manual_seed(seed)
                total = torch.zeros((), device=self.device)
                for _ in range(eval_iters):
                    xb, yb = dataset.get_batch(split, batch_size, block_size, generator=generator, device=self.device)
                    total += cross_entropy(self.model(xb), yb)
                out[split] = total.item() / eval_iters
        return out

    def _run(self, next_batch, steps: int, lr: float, schedule, optimizer: str, momentum: float,
             weight_decay: float, clip: float | None, progress: bool | None, log_every: int | None,
             check_every: int, on_step=None, every: int | None = None,
             betas: tuple[float, float] = (0.9, 0.999), callback=None) -> dict:
        """The training loop: batch, forward, loss, backward, (clip), lr from the schedule, update."""
        if steps < 1:
            raise ValueError(f"train expected steps >= 1, got {steps}")
        schedule = self._schedule(schedule, lr, steps)
        opt = self.set_optimizer(optimizer, lr, momentum, weight_decay, betas)
        params = self.model.parameters()
        # losses stay on the device; reading them back every step would wait for the GPU each time
        losses = torch.empty(steps, device=self.device)
        lrs: list[float] = []
        start_time, checked = time.perf_counter(), 0
        self.model.train()
        bar = tqdm(total=steps, desc=self.model_name, mininterval=1.0, leave=False,
                   disable=not (progress_enabled(progress, steps) and distributed.is_main()))
        try:
            for i in range(steps):
                xb, yb = next_batch()
                loss = cross_entropy(self.model(xb), yb)
                opt.zero_grad()
                loss.backward()
                distributed.all_reduce_gradients(params)  # data parallel: mean gradient over the ranks
                if clip is not None:
                    clip_grad_norm(params, clip)
                opt.lr = schedule(i)
                opt.step()
                if callback is not None:
                    callback(i + 1, opt)
                losses[i] = loss.detach()
                lrs.append(opt.lr)
                last = i == steps - 1
                logging = bool(log_every) and ((i + 1) % log_every == 0 or last)
                if (i + 1) % check_every == 0 or last or logging:
                    self._check_finite(losses, checked, i + 1, lrs)
                    checked = i + 1
                    bar.update(checked - bar.n)
                    bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{opt.lr:g}", refresh=False)
                    if logging and distributed.is_main():
                        print(f"step {i + 1:>7}/{steps}: loss {loss.item():.4f}  lr {opt.lr:g}")
                if on_step is not None and (i + 1) % every == 0:
                    on_step(i + 1)
        finally:
            bar.close()
        losses = distributed.average(losses)  # each rank saw its slice: the loss of the global batch
        run = {"loss": losses.tolist(), "lr": lrs, "seconds": time.perf_counter() - start_time}
        self.history["loss"] += run["loss"]
        self.history["lr"] += lrs
        return run

    def _check_finite(self, losses: Tensor, start: int, end: int, lrs: list[float]) -> None:
        window = losses[start:end]
        bad = ~torch.isfinite(window)
        here = bool(bad.any())
        # under data parallelism every rank must stop together, or the others would wait for it forever
        anywhere = here if distributed.world_size() == 1 else bool(distributed.average(bad.any().float()) > 0)
        if anywhere and not here:
            raise FloatingPointError(f"{self.model_name}: the loss of another rank became non-finite between "
                                     f"steps {start} and {end}; training stopped. Try a smaller learning rate.")
        if here:
            first = start + int(bad.nonzero()[0])
            self.history["loss"] += losses[:first + 1].tolist()
            self.history["lr"] += lrs[:first + 1]
            raise FloatingPointError(
                f"{self.model_name}: the loss became {losses[first].item()} at step {first} "
                f"(lr={lrs[first]:g}); training stopped. Try a smaller learning rate."
            )

    # --- evaluation ---------------------------------------------------------------------------
    def evaluate(self, x: Tensor, y: Tensor, batch_size: int = 16384) -> float:
        """Mean cross entropy over all of (x, y), in eval mode and without gradients; the mode is restored."""
        with inference(self.model):
            total = torch.zeros((), device=self.device)
            for i in range(0, len(x), batch_size):
                xb, yb = self._to_device(x[i:i + batch_size]), self._to_device(y[i:i + batch_size])
                total += cross_entropy(self.model(xb), yb) * len(yb)
            return total.item() / len(x)

    def split_losses(self, splits: dict[str, tuple[Tensor, Tensor]]) -> LossTable:
        """The loss on each split, as a one-row LossTable: model, version, train, val, test."""
        row: dict = {"model": self.model_name, "version": self.model_version}
        for name, (x, y) in splits.items():
            row[name] = self.evaluate(x, y)
        return LossTable([row])

    # --- plotting and sampling ----------------------------------------------------------------
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

    def sample(self, n: int, vocab: CharVocab | None = None, block_size: int | None = None,
               seed: int | None = None, max_len: int = 50) -> list[str]:
        """Generate n names, one character at a time, until each one draws '.' (id 0)."""
        vocab, block_size = vocab or self.vocab, block_size or self.block_size
        if vocab is None or block_size is None:
            raise ValueError("sample() needs a vocab and a block_size (pass them, or give them to RegisterModel)")
        generator = torch.Generator(device=self.device).manual_seed(seed) if seed is not None else None
        with inference(self.model):
            context = torch.zeros(n, block_size, dtype=torch.long, device=self.device)  # (n, T)
            drawn = []
            for _ in range(max_len):
                logits = self.model(context)
                if logits.ndim == 3:  # sequence models predict every position: keep the last
                    logits = logits[:, -1]
                ix = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)  # (n, 1)
                drawn.append(ix)
                context = torch.cat([context[:, 1:], ix], dim=1)
                if len(drawn) % 8 == 0 and (torch.cat(drawn, 1) == 0).any(1).all():
                    break
        names = []
        for row in torch.cat(drawn, 1).tolist():
            ids = row[:row.index(0)] if 0 in row else row
            names.append(vocab.decode(ids))
        return names

    # --- checkpoints --------------------------------------------------------------------------
    def architecture(self) -> list[tuple[str, tuple[int, ...]]]:
        return [(name, tuple(t.shape)) for name, t in self.model.state_dict().items()]

    def save(self, path: str | Path) -> Path:
        """Checkpoint model, optimiser, vocab and history; written to a temporary file, then renamed.
        Under data parallelism only rank 0 writes (every rank holds the same weights)."""
        path = Path(path)
        if not distributed.is_main():
            distributed.barrier()  # wait until rank 0 has written it
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        checkpoint = {
            "format": CHECKPOINT_FORMAT, "model_name": self.model_name, "model_version": self.model_version,
            "model_repr": repr(self.model), "architecture": self.architecture(),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "optimizer_type": type(self.optimizer).__name__,
            "vocab": self.vocab.itos if self.vocab is not None else None, "block_size": self.block_size,
            "history": self.history,
        }
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            torch.save(checkpoint, tmp)
            os.replace(tmp, path)  # atomic: a crash mid-save leaves the old checkpoint whole
        finally:
            if tmp.exists():
                tmp.unlink()
            distributed.barrier()  # the other ranks wait in save() until the file is whole
        return path

    def load(self, path: str | Path) -> RegisterModel:
        """Restore a checkpoint written by save(); one from another architecture is refused untouched."""
        checkpoint = torch.load(Path(path), map_location=self.device, weights_only=True)
        if checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path}: not a minitorchnn checkpoint of format {CHECKPOINT_FORMAT}")
        theirs = [(name, tuple(shape)) for name, shape in checkpoint["architecture"]]
        ours = self.architecture()
        if theirs != ours or checkpoint["model_repr"] != repr(self.model):
            diff = next(((a, b) for a, b in zip(theirs, ours) if a != b), None)
            detail = (f"first difference: checkpoint has {diff[0]}, this model has {diff[1]}" if diff else
                      f"checkpoint has {len(theirs)} tensors, this model {len(ours)}" if len(theirs) != len(ours)
                      else f"checkpoint model is\n{checkpoint['model_repr']}\nthis model is\n{self.model!r}")
            raise ValueError(
                f"{path} was saved from a different architecture ({checkpoint['model_name']} "
                f"{checkpoint['model_version']}) than {self.model_name} {self.model_version}: {detail}"
            )
        self.model.load_state_dict(checkpoint["model"])
        kind = AdamW if checkpoint["optimizer_type"] == "AdamW" else SGD
        self.optimizer = kind(self.model.parameters(), lr=0.0)
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.history = {k: list(v) for k, v in checkpoint["history"].items()}
        if checkpoint["vocab"] is not None:
            self.vocab = CharVocab(checkpoint["vocab"])
        self.block_size = checkpoint["block_size"]
        return self
