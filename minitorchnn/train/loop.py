"""fit(): the training loop, as makemore writes it (forward, zero_grad, backward, step), and the few
helpers it needs around the step: the loss log that checks for divergence, stopping cleanly on Ctrl-C,
and the hooks it calls after every step (print_every).

RegisterModel (register.py) is the lectures' front to it; evaluation, sampling and checkpoints live in
their own files.
"""
from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm import tqdm

from ..nn.loss import cross_entropy
from ..nn.module import Module
from ..nn.optim import Optimizer, clip_grad_norm, make_schedule
from ..parallel import distributed
from .config import TrainConfig

CHECK_EVERY = 100  # read the losses back from the device every this many steps (not every step)
DIVERGED_FACTOR, DIVERGED_LOSS = 10.0, 1e4  # a loss above 10x its first value, or above 1e4, has diverged


@dataclass
class Step:
    """What an on_step hook is handed after every update (step counts from 1)."""

    step: int
    steps: int
    loss: Tensor  # this step's loss, still on the device: .item() waits for it
    lr: float
    optimizer: Optimizer
    model: Module


def fit(model: Module, optimizer: Optimizer, next_batch: Callable[[], tuple[Tensor, Tensor]], config: TrainConfig,
        hooks: list[Callable[[Step], None]] = (), log: LossLog | None = None) -> dict:
    """The training loop: batch, forward, loss, zero_grad, backward, all-reduce, clip, lr, step, then the hooks.
    Returns this run's {"loss", "lr", "seconds"}; log keeps the steps done even when a divergence or Ctrl-C stops it."""
    log, params = log or LossLog(config.steps), model.parameters()
    schedule = make_schedule(config.schedule, config.lr, config.steps, config.warmup_steps, config.final_lr)
    model.train()
    with log.open(params[0].device), StopAfterStep(log) as interrupt:
        for i in range(config.steps):
            xb, yb = next_batch()
            loss = cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            distributed.all_reduce_gradients(params)  # data parallel: the mean gradient over the ranks
            if config.clip is not None:
                clip_grad_norm(params, config.clip)
            optimizer.lr = schedule(i)
            optimizer.step()
            log.record(loss, optimizer.lr)  # stays on the device; checked every CHECK_EVERY steps
            step = Step(i + 1, config.steps, loss, optimizer.lr, optimizer, model)
            for hook in hooks:
                hook(step)
            interrupt.after_step()
    return log.result()


class LossLog:
    """Every step's loss (kept on the device, read back every CHECK_EVERY steps to look for a divergence)
    and learning rate; a progress bar for long runs; on any stop, the steps done so far go into history."""

    def __init__(self, steps: int, name: str = "model", history: dict | None = None,
                 progress: bool | None = None) -> None:
        self.steps, self.name, self.history = steps, name, history
        self.progress = progress_enabled(progress, steps) and distributed.is_main()
        self.done, self.checked, self.lrs = 0, 0, []

    def open(self, device: torch.device) -> LossLog:
        self.losses = torch.empty(self.steps, device=device)  # no host sync per step: read back in check()
        self.bar = tqdm(total=self.steps, desc=self.name, mininterval=1.0, leave=False, disable=not self.progress)
        self.start = time.perf_counter()
        return self

    def record(self, loss: Tensor, lr: float) -> None:
        self.losses[self.done] = loss.detach()
        self.lrs.append(lr)
        self.done += 1
        if self.done % CHECK_EVERY == 0 or self.done == self.steps:
            check_losses(self.losses, self.checked, self.done, self.lrs, self.name)
            self.checked = self.done
            self.bar.update(self.checked - self.bar.n)

    def __enter__(self) -> LossLog:
        return self

    def __exit__(self, kind, err, traceback) -> None:
        self.bar.close()
        if err is not None and self.history is not None:  # what was trained before the stop stays on record
            kept = err.steps_kept if isinstance(err, TrainingDiverged) else self.done
            self.history["loss"] += self.losses[:kept].tolist()
            self.history["lr"] += self.lrs[:kept]

    def result(self) -> dict:
        run_losses = distributed.average(self.losses).tolist()  # each rank saw its slice: the global batch's loss
        if self.history is not None:
            self.history["loss"] += run_losses
            self.history["lr"] += self.lrs
        return {"loss": run_losses, "lr": self.lrs, "seconds": time.perf_counter() - self.start}


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite, or grew far above where it started; training stopped.
    steps_kept: how many steps' losses are worth keeping in the history (up to the one that went wrong)."""

    def __init__(self, message: str, steps_kept: int) -> None:
        super().__init__(message)
        self.steps_kept = steps_kept


def check_losses(losses: Tensor, start: int, end: int, lrs: list[float], name: str) -> None:
    """Stop on a NaN or infinite loss, or one above 10x the first (or above 1e4): one read from the device."""
    window = losses[start:end]
    limit = torch.clamp(losses[0] * DIVERGED_FACTOR, max=DIVERGED_LOSS)
    bad = ~torch.isfinite(window) | (window > limit)
    here = bool(bad.any())
    # under data parallelism every rank must stop together, or the others would wait for it forever
    anywhere = here if distributed.world_size() == 1 else bool(distributed.average(bad.any().float()) > 0)
    if anywhere and not here:
        raise TrainingDiverged(f"{name}: the loss of another process diverged between steps {start + 1} and "
                               f"{end}; training stopped. Try a smaller learning rate.", start)
    if here:
        first = start + int(bad.nonzero()[0])
        value = losses[first].item()
        what = (f"became {value}" if not math.isfinite(value) else
                f"reached {value:.4g}, more than {DIVERGED_FACTOR:g}x its starting value {losses[0].item():.4g} "
                f"(or above {DIVERGED_LOSS:g}),")
        raise TrainingDiverged(f"{name}: the loss {what} at step {first + 1} of {len(losses)} "
                               f"(lr={lrs[first]:g}); training stopped. Try a smaller learning rate.", first + 1)


class StopAfterStep:
    """Ctrl-C while training lets the step under way finish, then raises KeyboardInterrupt: the weights
    are never left half-updated. A second Ctrl-C stops at once."""

    def __init__(self, log: LossLog) -> None:
        self.log, self.requested, self.installed = log, False, False

    def __enter__(self) -> StopAfterStep:
        if threading.current_thread() is threading.main_thread() and distributed.world_size() == 1:
            self.previous = signal.signal(signal.SIGINT, self._handler)
            self.installed = True
        return self

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def after_step(self) -> None:
        if self.requested:
            raise KeyboardInterrupt(f"{self.log.name}: training interrupted after step {self.log.done} of "
                                    f"{self.log.steps}")

    def __exit__(self, *exc) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, self.previous)


def progress_enabled(progress: bool | None, steps: int) -> bool:
    """Show a progress bar for long runs, except under CI=true or MINITORCHNN_PROGRESS=0."""
    if progress is not None:
        return progress
    quiet = os.environ.get("CI", "").lower() in ("1", "true", "yes") or os.environ.get("MINITORCHNN_PROGRESS") == "0"
    return steps >= 1000 and not quiet


def print_every(n: int) -> Callable[[Step], None]:
    """An on_step hook that prints the loss and lr every n steps and at the last one."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"print_every expected a number of steps >= 1, got {n!r}")

    def hook(s: Step) -> None:
        if (s.step % n == 0 or s.step == s.steps) and distributed.is_main():
            print(f"step {s.step:>7}/{s.steps}: loss {s.loss.item():.4f}  lr {s.lr:g}")
    return hook


def as_hooks(on_step) -> list[Callable[[Step], None]]:
    """on_step as a list of hooks: None, one function of the Step, or a list of them."""
    if on_step is None:
        return []
    hooks = list(on_step) if isinstance(on_step, (list, tuple)) else [on_step]
    if not all(callable(h) for h in hooks):
        raise TypeError(f"on_step must be a function of the Step (or a list of them), got {on_step!r}")
    return hooks
