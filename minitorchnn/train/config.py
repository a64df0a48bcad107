"""TrainConfig: every training setting in one place, checked once, before anything trains.

As nanoGPT's GPTConfig and makemore's ModelConfig carry a model's settings, TrainConfig carries a
training run's. RegisterModel.train/train_text, compare(), experiment files and the command line
all build one and hand it on:

    config = mtn.TrainConfig(steps=20_000, lr=0.1, schedule="step", seed=42)
    reg.train(*data["train"], config)                  # or reg.train(X, Y, steps=20_000, lr=0.1, ...)
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

from ..nn.optim import OPTIMIZERS, SCHEDULES


class ConfigError(ValueError):
    """A training setting out of range; `.field` names it (the CLI turns it into --field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TrainConfig:
    """The settings of one training run; a value out of range raises ConfigError naming it."""

    steps: int = 1000
    batch_size: int = 32
    lr: float = 0.1
    schedule: str | Callable[[int], float] = "constant"  # constant, step, exponential, cosine, or step -> lr
    warmup_steps: int = 0  # cosine: linear warmup from 0 to lr over these steps
    final_lr: float | None = None  # step: lr/10, cosine: lr/100 when None
    optimizer: str = "sgd"  # sgd or adamw
    momentum: float = 0.0  # sgd
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)  # adamw
    clip: float | None = None  # largest global gradient norm; None: no clipping
    seed: int | None = None  # seeds the minibatches (the weights are seeded where the model is built)
    eval_interval: int | None = None  # text models: estimate the losses every this many steps
    eval_iters: int = 50  # text models: batches per loss estimate

    def __post_init__(self) -> None:
        if self.schedule is None:  # the lectures' "no schedule"
            object.__setattr__(self, "schedule", "constant")
        object.__setattr__(self, "betas", tuple(self.betas) if isinstance(self.betas, (list, tuple)) else self.betas)
        _integer(self, "steps", minimum=1)
        _integer(self, "batch_size", minimum=1)
        _number(self, "lr", above_zero=True)
        if not (callable(self.schedule) or self.schedule in SCHEDULES):
            raise ConfigError("schedule", f"schedule must be one of {', '.join(SCHEDULES)} or a function of the "
                                          f"step, got {self.schedule!r}")
        _integer(self, "warmup_steps", minimum=0)
        if self.warmup_steps >= self.steps and self.schedule == "cosine":
            raise ConfigError("warmup_steps",
                              f"warmup_steps must be below steps ({self.steps}), got {self.warmup_steps}")
        if self.final_lr is not None:
            _number(self, "final_lr")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError("optimizer", f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        _number(self, "momentum", below_one=True)
        _number(self, "weight_decay")
        betas = self.betas
        if not (isinstance(betas, tuple) and len(betas) == 2 and all(_finite(b) and 0 <= b < 1 for b in betas)):
            raise ConfigError("betas", f"betas must be two numbers in [0, 1), got {betas!r}")
        if self.clip is not None:
            _number(self, "clip", above_zero=True)
        if self.seed is not None:
            _integer(self, "seed")
        if self.eval_interval is not None:
            _integer(self, "eval_interval", minimum=1)
        _integer(self, "eval_iters", minimum=1)

    def replace(self, **changes) -> TrainConfig:
        """A copy with some settings changed (and checked): config.replace(lr=0.01)."""
        unknown = sorted(set(changes) - set(FIELDS))
        if unknown:
            raise ConfigError(unknown[0], f"unknown training setting{'s' * (len(unknown) > 1)} "
                                          f"{', '.join(unknown)}; known: {', '.join(FIELDS)}")
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """The settings that act on this run, one line: what the banner before training prints."""
        shown = ["steps", "batch_size", "lr", "schedule"]
        if self.schedule == "cosine":
            shown += ["warmup_steps"]
        if self.schedule in ("cosine", "step"):
            shown += ["final_lr"]
        shown += ["optimizer", "momentum"] if self.optimizer == "sgd" else ["optimizer", "betas"]
        shown += ["weight_decay", "clip", "seed"]
        values = {k: getattr(getattr(self, k), "__name__", None) or repr(getattr(self, k)) for k in shown}
        if self.final_lr is None and "final_lr" in values:  # say what None stands for
            values["final_lr"] = f"{self.lr / (10 if self.schedule == 'step' else 100):g}"
        return ", ".join(f"{k}={v}" for k, v in values.items())


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(config: TrainConfig, name: str, minimum: int | None = None) -> None:
    value = getattr(config, name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(name, f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(name, f"{name} must be at least {minimum}, got {value}")


def _number(config: TrainConfig, name: str, above_zero: bool = False, below_one: bool = False) -> None:
    value = getattr(config, name)
    if not _finite(value):
        raise ConfigError(name, f"{name} must be a finite number, got {value!r}")
    if above_zero and value <= 0:
        raise ConfigError(name, f"{name} must be above 0, got {value}")
    if value < 0:
        raise ConfigError(name, f"{name} must be at least 0, got {value}")
    if below_one and value >= 1:
        raise ConfigError(name, f"{name} must be below 1, got {value}")


FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))

# The two presets every run starts from (TrainConfig's own defaults are the plain SGD of makemore part 2).
# Each model in models.MODELS carries one, at the length and batch of its lecture; compare() starts from
# LECTURE_SGD and RegisterModel.train_text from GPT_ADAMW.
LECTURE_SGD = TrainConfig(schedule="step")  # lr 0.1, then lr / 10 for the last quarter of the steps
GPT_ADAMW = TrainConfig(lr=1e-3, optimizer="adamw", clip=1.0)  # the GPT lecture's AdamW, gradient norm clipped at 1
