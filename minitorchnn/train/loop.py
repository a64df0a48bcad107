"""fit(): the training loop, and the hooks it calls after every step (print_every, Step).

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

from ..parallel import distributed
from .config import TrainConfig
from ..nn.loss import cross_entropy
from ..nn.module import Module
from ..nn.optim import Optimizer, clip_grad_norm, make_schedule

CHECK_EVERY = 100  # read the losses back from the device every this many steps (not every step)
DIVERGED_FACTOR, DIVERGED_LOSS = 10.0, 1e4  # a loss above 10x its first value, or above 1e4, has diverged


def progress_enabled(progress: bool | None, steps: int) -> bool:
    """Show a progress bar for long runs, except under CI=true or MINITORCHNN_PROGRESS=0."""
    if progress is not None:
        return progress
    quiet = os.environ.get("CI", "").lower() in ("1", "true", "yes") or os.environ.get("MINITORCHNN_PROGRESS") == "0"
    return steps >= 1000 and not quiet


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite, or grew far above where it started; training stopped.
    steps_kept: how many steps' losses are worth keeping in the history (up to the one that went wrong)."""

    def __init__(self, message: str, steps_kept: int) -> None:
        super().__init__(message)
        self.steps_kept = steps_kept


@dataclass
class Step:
    """What an on_step hook is handed after every update (step counts from 1)."""

    step: int
    steps: int
    loss: Tensor  # this step's loss, still on the device: .item() waits for it
    lr: float
    optimizer: Optimizer
    model: Module


def print_every(n: int) -> Callable[[Step], None]:
    """An on_step hook that prints the loss and lr every n steps and at the last one."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"print_every expected a number of steps >= 1, got {n!r}")

    def hook(s: Step) -> None:
        if (s.step % n == 0 or s.step == s.steps) and distributed.is_main():
            print(f"step {s.step:>7}/{s.steps}: loss {s.loss.item():.4f}  lr {s.lr:g}")
    return hook


def _hooks(on_step) -> list[Callable[[Step], None]]:
    if on_step is None:
        return []
    hooks = list(on_step) if isinstance(on_step, (list, tuple)) else [on_step]
    if not all(callable(h) for h in hooks):
        raise TypeError(f"on_step must be a function of the Step (or a list of them), got {on_step!r}")
    return hooks


class _StopAfterStep:
    """Ctrl-C while training lets the step under way finish, then raises KeyboardInterrupt: the weights
    are never left half-updated. A second Ctrl-C stops at once."""

    def __enter__(self) -> _StopAfterStep:
        self.requested, self.installed = False, False
        if threading.current_thread() is threading.main_thread() and distributed.world_size() == 1:
            self.previous = signal.signal(signal.SIGINT, self._handler)
            self.installed = True
        return self

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, self.previous)


def fit(model: Module, optimizer: Optimizer, next_batch, config: TrainConfig, on_step=None, name: str = "model",
        history: dict | None = None, progress: bool | None = None) -> dict:
    """The training loop: batch, forward, loss, backward, (all-reduce), (clip), lr, update, hooks.

    Returns {"loss", "lr", "seconds"} of this run; every finished step is also appended to history,
    even when a NaN, a divergence or Ctrl-C stops the run.
    """
    hooks, schedule = _hooks(on_step), make_schedule(config.schedule, config.lr, config.steps,
                                                     config.warmup_steps, config.final_lr)
    params, steps = model.parameters(), config.steps
    losses = torch.empty(steps, device=optimizer.params[0].device)  # stay on the device: no sync per step
    lrs: list[float] = []
    done, checked, finished, start = 0, 0, False, time.perf_counter()
    bar = tqdm(total=steps, desc=name, mininterval=1.0, leave=False,
               disable=not (progress_enabled(progress, steps) and distributed.is_main()))
    model.train()
    try:
        with _StopAfterStep() as interrupt:
            for i in range(steps):
                xb, yb = next_batch()
                loss = cross_entropy(model(xb), yb)
                optimizer.zero_grad()
                loss.backward()
                distributed.all_reduce_gradients(params)  # data parallel: mean gradient over the ranks
                if config.clip is not None:
                    clip_grad_norm(params, config.clip)
                optimizer.lr = schedule(i)
                optimizer.step()
                losses[i] = loss.detach()
                lrs.append(optimizer.lr)
                if (i + 1) % CHECK_EVERY == 0 or i + 1 == steps:
                    _check_losses(losses, checked, i + 1, lrs, name)
                    checked = i + 1
                    bar.update(checked - bar.n)
                done = i + 1
                if hooks:
                    state = Step(done, steps, loss, optimizer.lr, optimizer, model)
                    for hook in hooks:
                        hook(state)
                if interrupt.requested:
                    raise KeyboardInterrupt(f"{name}: training interrupted after step {done} of {steps}")
        finished = True
    except TrainingDiverged as err:
        done = err.steps_kept  # keep the losses up to the step that went wrong
        raise
    finally:
        bar.close()
        if history is not None and not finished:  # what was trained before the stop stays on record
            history["loss"] += losses[:done].tolist()
            history["lr"] += lrs[:done]
    run_losses = distributed.average(losses)  # each rank saw its slice: the loss of the global batch
    if history is not None:
        history["loss"] += run_losses.tolist()
        history["lr"] += lrs
    return {"loss": run_losses.tolist(), "lr": lrs, "seconds": time.perf_counter() - start}


def _check_losses(losses: Tensor, start: int, end: int, lrs: list[float], name: str) -> None:
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
