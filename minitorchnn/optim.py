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


class AdamW:
    """Adam with decoupled weight decay, written out; the same update as torch.optim.AdamW.

    m and v are running averages of the gradient and of its square; dividing by sqrt(v) gives every
    parameter its own step size. Weight decay shrinks the weights directly, outside the Adam ratio.
    """

    def __init__(self, params: list[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("AdamW got an empty parameter list")
        if lr < 0 or weight_decay < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"AdamW expected lr, weight_decay >= 0 and betas in [0, 1), got {lr}, {weight_decay}, {betas}")
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.step_count = 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        self.step_count += 1
        beta1, beta2 = self.betas
        bias1 = 1 - beta1**self.step_count  # m and v start at 0: undo that bias early on
        bias2 = 1 - beta2**self.step_count
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            g = p.grad
            p.mul_(1 - self.lr * self.weight_decay)  # decoupled weight decay
            m.lerp_(g, 1 - beta1)  # m = beta1 * m + (1 - beta1) * g
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)  # v = beta2 * v + (1 - beta2) * g^2
            denom = (v.sqrt() / math.sqrt(bias2)).add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / bias1)  # p -= lr * m_hat / (sqrt(v_hat) + eps)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict:
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps, "weight_decay": self.weight_decay,
                "step_count": self.step_count, "m": [t.clone() for t in self.m], "v": [t.clone() for t in self.v]}

    def load_state_dict(self, state: dict) -> None:
        if len(state["m"]) != len(self.params):
            raise ValueError(f"AdamW.load_state_dict: expected {len(self.params)} parameters, got {len(state['m'])}")
        self.lr, self.betas, self.eps = state["lr"], tuple(state["betas"]), state["eps"]
        self.weight_decay, self.step_count = state["weight_decay"], state["step_count"]
        self.m = [t.to(p.device) for t, p in zip(state["m"], self.params)]
        self.v = [t.to(p.device) for t, p in zip(state["v"], self.params)]

    def __repr__(self) -> str:
        return f"AdamW(lr={self.lr}, betas={self.betas}, eps={self.eps}, weight_decay={self.weight_decay})"


def clip_grad_norm(params: list[Tensor], max_norm: float) -> Tensor:
    """Scale all gradients down together so their global L2 norm is at most max_norm; returns the norm
    before clipping. Stays on the device: no host sync."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)  # 1 when the norm is already small enough
    for g in grads:
        g.mul_(scale)
    return total
