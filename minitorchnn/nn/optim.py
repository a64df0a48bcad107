"""The hand-written optimisers (SGD, AdamW) and the learning-rate schedules of the lectures."""
from __future__ import annotations

import math

import torch
from torch import Tensor


class Optimizer:
    """What every optimiser shares: the parameter list and its checks, zero_grad, state_dict, repr.

    A subclass writes only its update (`step`) and names its settings and per-parameter state.
    """

    settings: tuple[str, ...] = ("lr",)  # the hyper-parameters, in the order repr() shows them
    slots: tuple[str, ...] = ()  # lists of per-parameter tensors (velocity, moments)

    def __init__(self, params: list[Tensor], lr: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not all(isinstance(p, Tensor) and p.requires_grad for p in self.params):
            raise TypeError(f"{type(self).__name__} expected tensors with requires_grad=True")
        self.lr = lr

    def step(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define step()")

    def with_grads(self) -> tuple[list[int], list[Tensor], list[Tensor]]:
        """The indices, tensors and gradients of the parameters that have a gradient (the rest sit out)."""
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        return live, [self.params[i] for i in live], [self.params[i].grad for i in live]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict:
        state = {name: getattr(self, name) for name in self.settings}
        for slot in self.slots:
            state[slot] = [t.detach().clone() if t is not None else None for t in getattr(self, slot)]
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore settings and state; checked whole before anything changes."""
        missing = [k for k in (*self.settings, *self.slots) if k not in state]
        if missing:
            raise KeyError(f"{type(self).__name__}.load_state_dict: missing {missing}")
        for slot in self.slots:
            if len(state[slot]) != len(self.params):
                raise ValueError(f"{type(self).__name__}.load_state_dict: expected {len(self.params)} parameters, "
                                 f"got {len(state[slot])}")
        for name in self.settings:
            value = state[name]
            setattr(self, name, tuple(value) if isinstance(value, list) else value)
        for slot in self.slots:
            setattr(self, slot, [t.to(p.device) if t is not None else None for t, p in zip(state[slot], self.params)])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)}' for k in self.settings)})"


class SGD(Optimizer):
    """p -= lr * grad, with optional momentum and weight decay (same update as torch.optim.SGD)."""

    settings = ("lr", "momentum", "weight_decay")
    slots = ("velocity",)

    def __init__(self, params: list[Tensor], lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD expected lr, momentum, weight_decay >= 0, got {lr}, {momentum}, {weight_decay}")
        self.momentum, self.weight_decay = momentum, weight_decay
        self.velocity: list[Tensor | None] = [None] * len(self.params)

    @torch.no_grad()
    def step(self) -> None:
        live, params, grads = self.with_grads()
        if not live:
            return
        # one torch._foreach call updates every tensor of the list (see AdamW.step)
        if self.weight_decay:
            grads = torch._foreach_add(grads, params, alpha=self.weight_decay)  # L2 penalty folded into the gradient
        if self.momentum:
            for i in live:  # a velocity starting at 0 makes the first step's direction the gradient itself
                if self.velocity[i] is None:
                    self.velocity[i] = torch.zeros_like(self.params[i])
            velocity = [self.velocity[i] for i in live]
            torch._foreach_mul_(velocity, self.momentum)
            torch._foreach_add_(velocity, grads)  # v = momentum * v + grad
            grads = velocity
        torch._foreach_add_(params, grads, alpha=-self.lr)  # p -= lr * grad


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
        return (f"StepDecay(total_steps={self.total_steps}, lr={self.lr}, final_lr={self.final_lr}, "
                f"switch_step={self.switch_step})")


class ExponentialDecay:
    """A stepped exponential decay: lr0 * gamma ** (step // every)."""

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
            raise ValueError(f"WarmupCosine needs 0 <= warmup_steps < total_steps, "
                             f"got {warmup_steps} and {total_steps}")
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


class AdamW(Optimizer):
    """Adam with decoupled weight decay, written out; the same update as torch.optim.AdamW.

    m and v are running averages of the gradient and of its square; dividing by sqrt(v) gives every
    parameter its own step size. Weight decay shrinks the weights directly, outside the Adam ratio.
    """

    settings = ("lr", "betas", "eps", "weight_decay", "step_count")
    slots = ("m", "v")

    def __init__(self, params: list[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(params, lr)
        if lr < 0 or weight_decay < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"AdamW expected lr, weight_decay >= 0 and betas in [0, 1), "
                             f"got {lr}, {weight_decay}, {betas}")
        self.betas, self.eps, self.weight_decay = tuple(betas), eps, weight_decay
        self.step_count = 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        self.step_count += 1
        beta1, beta2 = self.betas
        bias1 = 1 - beta1**self.step_count  # m and v start at 0: undo that bias early on
        bias2 = 1 - beta2**self.step_count
        live, params, grads = self.with_grads()
        if not live:
            return
        m, v = [self.m[i] for i in live], [self.v[i] for i in live]
        # torch._foreach_op(list, ...) does op to every tensor of the list: the same maths as a loop over the
        # parameters, but one call instead of one per tensor (on a GPU each call is a kernel launch, ~5 us)
        torch._foreach_mul_(params, 1 - self.lr * self.weight_decay)  # decoupled weight decay
        torch._foreach_lerp_(m, grads, 1 - beta1)  # m = beta1 * m + (1 - beta1) * g
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - beta2)  # v = beta2 * v + (1 - beta2) * g^2
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, math.sqrt(bias2))
        torch._foreach_add_(denom, self.eps)  # sqrt(v_hat) + eps
        torch._foreach_addcdiv_(params, m, denom, value=-self.lr / bias1)  # p -= lr * m_hat / (sqrt(v_hat) + eps)

    def __repr__(self) -> str:
        return f"AdamW(lr={self.lr}, betas={self.betas}, eps={self.eps}, weight_decay={self.weight_decay})"


OPTIMIZERS = {"sgd": SGD, "adamw": AdamW}
SCHEDULES = ("constant", "step", "exponential", "cosine")


def make_schedule(name, lr: float, steps: int, warmup_steps: int = 0, final_lr: float | None = None):
    """The one place a schedule's name becomes a schedule (a function step -> lr).

    'constant': lr throughout. 'step': lr, then final_lr (default lr/10) for the last quarter.
    'exponential': lr * 0.95 ** (step // 200). 'cosine': linear warmup over warmup_steps, then a half
    cosine from lr down to final_lr (default lr/100). A function of the step is used as it is.
    """
    if callable(name):
        return name
    if name is None or name == "constant":
        return Constant(lr)
    if name == "step":
        return StepDecay(steps, lr=lr, final_lr=lr / 10 if final_lr is None else final_lr)
    if name == "exponential":
        return ExponentialDecay(lr)
    if name == "cosine":
        return WarmupCosine(steps, lr, warmup_steps=warmup_steps, min_lr=final_lr)
    raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)} or a function of the step, got {name!r}")


def clip_grad_norm(params: list[Tensor], max_norm: float) -> Tensor:
    """Scale all gradients down together so their global L2 norm is at most max_norm; returns the norm
    before clipping. Stays on the device: no host sync."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))  # norm of the per-tensor norms
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)  # 1 when the norm is already small enough
    torch._foreach_mul_(grads, scale)  # every gradient times the same scale, in one call (see AdamW.step)
    return total
