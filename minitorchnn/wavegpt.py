"""WaveGPT: a GPT with a causal WaveNet stream beside its transformer stream, mixed per position."""
from __future__ import annotations

import torch
from torch import Tensor

from .conv import WaveNet
from .gpt import GPT
from .layers import Linear


class WaveGPT(GPT):
    """ids (B, T) -> logits (B, T, vocab_size). The transformer blocks and a WaveNet of dilated causal
    convolutions both read the embeddings; their outputs are added per position, the WaveNet's scaled by
    a learned `beta` (starting at 0, so training starts from a plain GPT), then LayerNorm and the head.
    Both streams are causal, so logits at position t depend on tokens <= t only."""

    def __init__(self, vocab_size: int, *, block_size: int = 64, n_embd: int = 128, n_head: int = 4,
                 n_layer: int = 4, dropout: float = 0.0, wavenet_channels: int | None = None) -> None:
        super().__init__(vocab_size, block_size=block_size, n_embd=n_embd, n_head=n_head, n_layer=n_layer,
                         dropout=dropout)
        # the WaveNet keeps its own 1/sqrt(fan_in) init: at GPT's std 0.02 its gated layers would
        # start with outputs near zero, and beta would have nothing to mix in
        self.wavenet_channels = wavenet_channels or n_embd
        # a narrower WaveNet stream lets WaveGPT match a GPT's parameter count; 1x1 projections in and out
        self.wavenet_in = Linear(n_embd, self.wavenet_channels, bias=False)
        self.wavenet = WaveNet(self.wavenet_channels, block_size)
        self.wavenet_out = Linear(self.wavenet_channels, n_embd, bias=False)
        self.beta = torch.zeros(1, requires_grad=True)  # the learned mix of the WaveNet stream

    def forward(self, idx: Tensor) -> Tensor:
        x = self.embed(idx)  # (B, T, C)
        h = x
        for block in self.blocks:
            h = block(h)  # causal attention
        w = self.wavenet_out(self.wavenet(self.wavenet_in(x)))  # (B, T, C), causal: position t sees x[<= t]
        return self.lm_head(self.ln_f(h + self.beta * w))  # (B, T, vocab_size)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, wavenet_channels={self.wavenet_channels}"
