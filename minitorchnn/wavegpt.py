"""WaveGPT: a GPT with a causal WaveNet stream beside its transformer stream, mixed per position."""
from __future__ import annotations

import torch
from torch import Tensor

from .attention import Block, Dropout
from .conv import WaveNet
from .gpt import LanguageModel, init_gpt_weights
from .layers import Embedding, LayerNorm1d, Linear


class WaveGPT(LanguageModel):
    """ids (B, T) -> logits (B, T, vocab_size). The transformer blocks and a WaveNet of dilated causal
    convolutions both read the embeddings; their outputs are added per position, the WaveNet's scaled by
    a learned `beta` (starting at 0, so training starts from a plain GPT), then LayerNorm and the head.
    Both streams are causal, so logits at position t depend on tokens <= t only."""

    def __init__(self, vocab_size: int, block_size: int, n_embd: int, n_head: int, n_layer: int,
                 dropout: float = 0.0, wavenet_channels: int | None = None) -> None:
        self.vocab_size, self.block_size = vocab_size, block_size
        self.n_embd, self.n_head, self.n_layer = n_embd, n_head, n_layer
        self.token_embedding = Embedding(vocab_size, n_embd)
        self.position_embedding = Embedding(block_size, n_embd)
        self.dropout = Dropout(dropout)
        self.blocks = [Block(n_embd, n_head, block_size, dropout) for _ in range(n_layer)]
        self.ln_f = LayerNorm1d(n_embd)
        self.lm_head = Linear(n_embd, vocab_size)
        init_gpt_weights(self, n_layer)
        # the WaveNet keeps its own 1/sqrt(fan_in) init: at GPT's std 0.02 its gated layers would
        # start with outputs near zero, and beta would have nothing to mix in
        self.wavenet_channels = wavenet_channels or n_embd
        # a narrower WaveNet stream lets WaveGPT match a GPT's parameter count; 1x1 projections in and out
        self.wavenet_in = Linear(n_embd, self.wavenet_channels, bias=False)
        self.wavenet = WaveNet(self.wavenet_channels, block_size)
        self.wavenet_out = Linear(self.wavenet_channels, n_embd, bias=False)
        self.beta = torch.zeros(1, requires_grad=True)  # the learned mix of the WaveNet stream

    def forward(self, idx: Tensor) -> Tensor:
        self.check_length(idx)
        T = idx.shape[1]
        x = self.dropout(self.token_embedding(idx) + self.position_embedding(torch.arange(T, device=idx.device)))
        h = x
        for block in self.blocks:
            h = block(h)  # (B, T, C), causal attention
        w = self.wavenet_out(self.wavenet(self.wavenet_in(x)))  # (B, T, C), causal: position t sees x[<= t]
        h = h + self.beta * w
        return self.lm_head(self.ln_f(h))  # (B, T, vocab_size)

    def extra_repr(self) -> str:
        return (f"vocab_size={self.vocab_size}, block_size={self.block_size}, n_embd={self.n_embd}, "
                f"n_head={self.n_head}, n_layer={self.n_layer}, wavenet_channels={self.wavenet_channels}")
