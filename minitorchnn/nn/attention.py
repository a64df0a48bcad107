"""The transformer's layers: causal multi-head self-attention, the feed-forward net, Block."""
from __future__ import annotations

import torch
from torch import Tensor

from .layers import GELU, Dropout, Linear, ReLU
from .module import Module, check_sizes
from .norm import LayerNorm1d


class MultiHeadAttention(Module):
    """Causal self-attention with n_head heads: (B, T, n_embd) -> (B, T, n_embd), T <= block_size."""

    def __init__(self, n_embd: int, n_head: int, block_size: int, dropout: float = 0.0, bias: bool = True) -> None:
        check_sizes("MultiHeadAttention", n_embd=n_embd, n_head=n_head, block_size=block_size)
        if n_embd % n_head != 0:
            raise ValueError(f"MultiHeadAttention: n_embd={n_embd} is not divisible by n_head={n_head}")
        self.n_embd, self.n_head, self.block_size = n_embd, n_head, block_size
        self.head_size = n_embd // n_head
        self.qkv = Linear(n_embd, 3 * n_embd, bias)  # queries, keys and values of every head in one matmul
        self.proj = Linear(n_embd, n_embd, bias)
        self.attn_dropout, self.resid_dropout = Dropout(dropout), Dropout(dropout)
        # the causal mask: position t may look at positions <= t only (a buffer, not a parameter).
        # It is additive: 0 where allowed, -inf in the future, so softmax gives the future weight 0.
        future = torch.ones(block_size, block_size, dtype=torch.bool).triu(diagonal=1)
        self.mask = torch.zeros(block_size, block_size).masked_fill(future, float("-inf"))

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.shape
        self.expect(C == self.n_embd, "expected last dim {}, got {}", self.n_embd, C)
        self.expect(T <= self.block_size, "got a sequence of {} tokens, longer than block_size={}", T, self.block_size)
        # (B, T, 3C) -> 3 x (B * n_head, T, head_size): each head attends on its own slice of the channels
        qkv = self.project_qkv(x).view(B, T, 3, self.n_head, self.head_size)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).reshape(3, B * self.n_head, T, self.head_size)
        # scores = q @ k^T / sqrt(head_size) + mask: scaled to unit variance so the softmax does not saturate,
        # masked so no position peeks at the future. baddbmm does the three in one call (one kernel on a GPU).
        scores = torch.baddbmm(self.mask[:T, :T], q, k.transpose(1, 2), alpha=self.head_size**-0.5)  # (B*nh, T, T)
        weights = self.attn_dropout(torch.softmax(scores, dim=-1))  # each row: how much t takes from each s <= t
        out = torch.bmm(weights, v).view(B, self.n_head, T, self.head_size)  # weights @ v
        out = out.transpose(1, 2).reshape(B, T, C)  # heads side by side again
        return self.resid_dropout(self.proj(out))

    def project_qkv(self, x: Tensor) -> Tensor:
        """Queries, keys and values side by side: (B, T, C) -> (B, T, 3C); WaveGPT adds a convolution here."""
        return self.qkv(x)

    def extra_repr(self) -> str:
        return f"n_embd={self.n_embd}, n_head={self.n_head}, block_size={self.block_size}"


ACTIVATIONS = {"relu": ReLU, "gelu": GELU}


class FeedForward(Module):
    """Per-position MLP: fc (n_embd -> 4 n_embd), ReLU (or GELU), proj (4 n_embd -> n_embd), Dropout."""

    def __init__(self, n_embd: int, dropout: float = 0.0, bias: bool = True, activation: str = "relu") -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"FeedForward: activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        self.fc = Linear(n_embd, 4 * n_embd, bias)
        self.activation = ACTIVATIONS[activation]()
        self.proj = Linear(4 * n_embd, n_embd, bias)  # back into the residual stream (GPT scales its init)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.proj(self.activation(self.fc(x))))  # (B, T, C) -> (B, T, 4C) -> (B, T, C)


class Block(Module):
    """A transformer block, pre-LayerNorm: x + attention(ln(x)), then x + feedforward(ln(x))."""

    def __init__(self, n_embd: int, n_head: int, block_size: int, dropout: float = 0.0, bias: bool = True,
                 activation: str = "relu") -> None:
        self.ln1 = LayerNorm1d(n_embd, bias=bias)
        self.attn = MultiHeadAttention(n_embd, n_head, block_size, dropout, bias)
        self.ln2, self.ffwd = LayerNorm1d(n_embd, bias=bias), FeedForward(n_embd, dropout, bias, activation)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))  # tokens communicate
        return x + self.ffwd(self.ln2(x))  # each token computes on what it gathered
