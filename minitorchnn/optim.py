"""The hand-written SGD update and the learning-rate schedules of the lectures."""
from __future__ import annotations

import math

import torch
from torch import Tensor


class SGD:
    """p -= lr * grad, with optional momentum and weight decay (same update as torch.optim.SGD)."""

    def __init__(self, params: list[Tensor], lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("SGD got an empty parameter list")
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD expected lr, momentum, weight_decay >= 0, got {lr}, {momentum}, {weight_decay}")
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.velocity: list[Tensor | None] = [None] * len(self.params)

    @torch.no_grad()
    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            grad = p.grad
            if self.weight_decay:
                grad = grad + self.weight_decay * p  # L2 penalty folded into the gradient
            if self.momentum:
                v = self.velocity[i]
                # the first step starts the running direction at the gradient itself
                v = grad.clone() if v is None else v.mul_(self.momentum).add_(grad)
                self.velocity[i] = v
                grad = v
            p.add_(grad, alpha=-self.lr)  # p -= lr * grad, in one in-place kernel

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay,
                "velocity": [v.detach().clone() if v is not None else None for v in self.velocity]}

    def load_state_dict(self, state: dict) -> None:
        if len(state["velocity"]) != len(self.params):
            raise ValueError(f"SGD.load_state_dict: expected {len(self.params)} parameters, got {len(state['velocity'])}")
        self.lr, self.momentum, self.weight_decay = state["lr"], state["momentum"], state["weight_decay"]
        self.velocity = [v.to(p.device) if v is not None else None for v, p in zip(state["velocity"], self.params)]

    def __repr__(self) -> str:
        return f"SGD(lr={self.lr}, momentum={self.momentum}, weight_decay={self.weight_decay})"


class Constant:
    """The same learning rate at every step."""

    def __init__(self, lr: float) -> None:
        self.lr = lr

    def __call__(self, step: int) -> float:
        return self.lr

    def __repr__(self) -> str:
        return f"Constant(lr={self.lr})"


class StepDecay:
    """The lecture's schedule: lr until the last `final_fraction` of the steps, then final_lr (0.1 then 0.01)."""

    def __init__(self, total_steps: int, lr: float = 0.1, final_lr: float = 0.01, final_fraction: float = 0.25) -> None:
        self.total_steps, self.lr, self.final_lr, self.final_fraction = total_steps, lr, final_lr, final_fraction
        self.switch_step = math.ceil(total_steps * (1 - final_fraction))

    def __call__(self, step: int) -> float:
        return self.lr if step < self.switch_step else self.final_lr

    def __repr__(self) -> str:
        return f"StepDecay(total_steps={self.total_steps}, lr={self.lr}, final_lr={self.final_lr}, switch_step={self.switch_step})"


class ExponentialDecay:
    """The seed notebook's schedule: lr0 * gamma ** (step // every)."""

    def __init__(self, lr: float, gamma: float = 0.95, every: int = 200) -> None:
        self.lr, self.gamma, self.every = lr, gamma, every

    def __call__(self, step: int) -> float:
        return self.lr * self.gamma ** (step // self.every)

    def __repr__(self) -> str:
        return f"ExponentialDecay(lr={self.lr}, gamma={self.gamma}, every={self.every})"


class WarmupCosine:
    """Linear warmup from 0 to lr over warmup_steps, then a cosine decay down to min_lr at total_steps."""

    def __init__(self, total_steps: int, lr: float, warmup_steps: int = 0, min_lr: float | None = None) -> None:
        if not 0 <= warmup_steps < total_steps:
            raise ValueError(f"WarmupCosine needs 0 <= warmup_steps < total_steps, got {warmup_steps} and {total_steps}")
        self.total_steps, self.lr, self.warmup_steps = total_steps, lr, warmup_steps
        self.min_lr = lr / 100 if min_lr is None else min_lr

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - 1 - self.warmup_steps))
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1 + math.cos(math.pi * progress))

    def __repr__(self) -> str:
        return (f"WarmupCosine(total_steps={self.total_steps}, lr={self.lr}, warmup_steps={self.warmup_steps}, "
                f"min_lr={self.min_lr})")
