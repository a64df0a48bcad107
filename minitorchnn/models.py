"""The named models of the course, built from minitorchnn layers, and MODELS: the registry of them all."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .nn.gpt import GPT
from .nn import (BatchNorm1d, BatchNorm1dPerPosition, Embedding, FlattenConsecutive, LayerNorm1d, Linear,
                     Sequential, Tanh)
from .nn.module import Module
from .train.config import GPT_ADAMW, LECTURE_SGD, TrainConfig
from .nn.wavegpt import ParallelWaveGPT, WaveGPT


def mlp(vocab_size: int = 27, block_size: int = 3, n_embd: int = 10, n_hidden: int = 200,
        batchnorm: bool = False) -> Sequential:
    """The Bengio-style MLP of the lectures: (B, block_size) ids -> (B, vocab_size) logits.

    11,897 parameters at the defaults; 12,097 with batchnorm (the hidden Linear loses its bias,
    BatchNorm1d's beta takes its place).
    """
    layers = [
        Embedding(vocab_size, n_embd),
        FlattenConsecutive(block_size),  # (B, T, C) -> (B, T * C)
        Linear(block_size * n_embd, n_hidden, bias=not batchnorm),
        *([BatchNorm1d(n_hidden)] if batchnorm else []),
        Tanh(),
        Linear(n_hidden, vocab_size),
    ]
    model = Sequential(layers, block_size=block_size)
    with torch.no_grad():
        layers[2].weight *= 5 / 3  # kaiming gain for tanh: keeps activations out of saturation
        layers[-1].weight *= 0.1  # a near-uniform first guess: start at loss ~ log(27), not far above
    return model


def wavenet(vocab_size: int = 27, block_size: int = 8, n_embd: int = 24, n_hidden: int = 128,
            norm: str = "batchnorm") -> Sequential:
    """The lecture's hierarchical WaveNet: fuse 2 consecutive positions per level, log2(block_size) levels.

    76,579 parameters at the defaults. Shapes for a batch of 4 at block_size 8:
    (4, 8) -> Embedding (4, 8, 24) -> (4, 4, 48) -> (4, 4, 128) -> (4, 2, 256) -> (4, 2, 128)
    -> (4, 256) -> (4, 128) -> (4, 27).
    norm after each hidden Linear: "batchnorm" (default), "layernorm", "none" (the Linear keeps its
    bias) or "batchnorm-per-position" (the lecture's bug, for comparisons).
    """
    levels = round(math.log2(block_size))
    if block_size < 2 or 2**levels != block_size:
        raise ValueError(f"wavenet needs block_size to be a power of 2 (2, 4, 8, 16, ...), got {block_size}")
    if norm not in NORMS:
        raise ValueError(f"wavenet: unknown norm {norm!r}; known: {', '.join(NORMS)}")
    layers = [Embedding(vocab_size, n_embd)]
    width, positions = n_embd, block_size
    for _ in range(levels):
        positions //= 2
        layers += [FlattenConsecutive(2), Linear(2 * width, n_hidden, bias=norm == "none"),
                   *_norm_layer(norm, n_hidden, positions), Tanh()]
        width = n_hidden
    layers.append(Linear(n_hidden, vocab_size))
    with torch.no_grad():
        layers[-1].weight *= 0.1
    return Sequential(layers, block_size=block_size)


NORMS = ("batchnorm", "layernorm", "none", "batchnorm-per-position")


def _norm_layer(norm: str, width: int, positions: int) -> list:
    if norm == "batchnorm":
        return [BatchNorm1d(width)]
    if norm == "layernorm":
        return [LayerNorm1d(width)]
    if norm == "batchnorm-per-position" and positions > 1:  # the last level is 2-D: no positions to split
        return [BatchNorm1dPerPosition(width, positions)]
    if norm == "batchnorm-per-position":
        return [BatchNorm1d(width)]
    return []


NAMES_RUN = LECTURE_SGD.replace(steps=30_000)  # makemore's names models: 30,000 steps of 32 at lr 0.1, then 0.01


@dataclass(frozen=True)
class ModelSpec:
    """A named model of the course and its defaults, the one place they live: its builder (vocab_size,
    block_size, **shape) -> model, the data it reads ("names" or "text"), its block size and shape, and
    the training run its lecture gives it (what `python -m minitorchnn train --model NAME` runs)."""

    build: Callable[..., Module]
    data: str
    block_size: int
    batchnorm: bool = False  # has BatchNorm layers (what --sync-batchnorm acts on)
    description: str = ""
    shape: dict = field(default_factory=dict)  # size settings the command line can change (n_embd=128, ...)
    training: TrainConfig = NAMES_RUN

    def __call__(self, vocab_size: int, block_size: int | None = None, **kwargs) -> Module:
        return self.build(vocab_size, self.block_size if block_size is None else block_size, **kwargs)


def _gpt(vocab_size: int, block_size: int, **kwargs) -> GPT:
    return GPT(vocab_size, block_size=block_size, **kwargs)


def _wavegpt(vocab_size: int, block_size: int, **kwargs) -> WaveGPT:
    return WaveGPT(vocab_size, block_size=block_size, **kwargs)


def _parallel_wavegpt(vocab_size: int, block_size: int, **kwargs) -> ParallelWaveGPT:
    return ParallelWaveGPT(vocab_size, block_size=block_size, **kwargs)


# The GPTs' shape (the course's CPU configuration, 818,241 parameters on Shakespeare) and their run
GPT_SHAPE = dict(n_layer=4, n_head=4, n_embd=128, dropout=0.0)
TEXT_RUN = GPT_ADAMW.replace(steps=2_000, batch_size=12, schedule="cosine", warmup_steps=100)

# The one list of the course's models: the command line and experiment files read it, and the
# vocabulary size always comes from the data.
MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec(lambda vocab_size, block_size, **kw: mlp(vocab_size, block_size, **kw), "names", 3,
                     description="the Bengio-style MLP"),
    "mlp-bn": ModelSpec(lambda vocab_size, block_size, **kw: mlp(vocab_size, block_size, batchnorm=True, **kw),
                        "names", 3, batchnorm=True, description="the MLP with BatchNorm"),
    "wavenet": ModelSpec(lambda vocab_size, block_size, **kw: wavenet(vocab_size, block_size, **kw), "names", 8,
                         batchnorm=True, description="the hierarchical WaveNet"),
    "gpt": ModelSpec(_gpt, "text", 64, description="the GPT", shape=GPT_SHAPE, training=TEXT_RUN),
    "wavegpt": ModelSpec(_wavegpt, "text", 64, description="GPT with causal depthwise convolutions in its blocks",
                         shape=GPT_SHAPE, training=TEXT_RUN),
    "wavegpt-parallel": ModelSpec(_parallel_wavegpt, "text", 64, shape=GPT_SHAPE, training=TEXT_RUN,
                                  description="GPT with a causal WaveNet stream beside it (the first WaveGPT)"),
}


def wavenet_every_position(model: Sequential, idx: torch.Tensor) -> torch.Tensor:
    """Run a hierarchical wavenet() as dilated convolutions over a whole sequence in one pass.

    idx (B, T) -> logits (B, T - block_size + 1, vocab_size): position j holds the prediction for the
    window idx[:, j : j + block_size], the same as model(window) gives. Level k pairs each position with
    the one 2**k steps back (a dilated convolution of kernel size 2), so windows that overlap share
    their work instead of recomputing it. BatchNorm must use its running statistics: call model.eval().
    """
    if any(isinstance(layer, BatchNorm1d) and layer.training for layer in model):
        raise ValueError("wavenet_every_position needs model.eval(): in training mode BatchNorm1d would take "
                         "statistics over every position, not over the windows the model was trained on")
    x = model[0](idx)  # (B, T, C)
    dilation = 1
    for layer in model.layers[1:-1]:
        if isinstance(layer, FlattenConsecutive):
            # each position next to the one `dilation` steps back, older first as FlattenConsecutive does
            x = torch.cat([x[:, :-dilation], x[:, dilation:]], dim=2)  # (B, T - dilation, 2C)
            dilation *= 2
        else:
            x = layer(x)  # Linear, BatchNorm1d (eval) and Tanh act on every position alike
    return model[-1](x)  # (B, T - block_size + 1, vocab_size)
