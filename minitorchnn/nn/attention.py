"""The transformer's layers: causal multi-head self-attention, the feed-forward net, Block."""
from __future__ import annotations

import torch
from torch import Tensor

from .layers import GELU, Dropout, LayerNorm1d, Linear, ReLU, Sequential
from .module import Module


class MultiHeadAttention(Module):
    """Causal self-attention with n_head heads: (B, T, n_embd) -> (B, T, n_embd), T <= block_size."""

    def __init__(self, n_embd: int, n_head: int, block_size: int, dropout: float = 0.0, bias: bool = True) -> None:
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
        if C != self.n_embd:
            raise ValueError(f"{self!r} expected last dim {self.n_embd}, got {C}")
        if T > self.block_size:
            raise ValueError(f"{self!r} got a sequence of {T} tokens, longer than block_size={self.block_size}")
        # (B, T, 3C) -> 3 x (B * n_head, T, head_size): each head attends on its own slice of the channels.
        # One permute and one copy put queries, keys and values head-major together (a GPU launches one
        # copy kernel, not one per tensor).
        qkv = self.project_qkv(x).view(B, T, 3, self.n_head, self.head_size)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).reshape(3, B * self.n_head, T, self.head_size)
        # scores = mask + q @ k^T / sqrt(head_size), in one call (baddbmm) over the B * n_head heads.
        # Scaling keeps the scores at unit variance so the softmax does not saturate; the mask stops
        # every position from peeking at the future.
        scores = torch.baddbmm(self.mask[:T, :T], q, k.transpose(1, 2), alpha=self.head_size**-0.5)  # (B*nh, T, T)
        weights = self.attn_dropout(torch.softmax(scores, dim=-1))
        out = torch.bmm(weights, v).view(B, self.n_head, T, self.head_size)
        out = out.transpose(1, 2).reshape(B, T, C)  # heads side by side again
        return self.resid_dropout(self.proj(out))

    def project_qkv(self, x: Tensor) -> Tensor:
        """Queries, keys and values side by side: (B, T, C) -> (B, T, 3C); WaveGPT adds a convolution here."""
        return self.qkv(x)

    def extra_repr(self) -> str:
        return f"n_embd={self.n_embd}, n_head={self.n_head}, block_size={self.block_size}"


ACTIVATIONS = {"relu": ReLU, "gelu": GELU}


class FeedForward(Module):
    """Per-position MLP: Linear(n_embd, 4 n_embd) -> ReLU (or GELU) -> Linear(4 n_embd, n_embd) -> Dropout."""

    def __init__(self, n_embd: int, dropout: float = 0.0, bias: bool = True, activation: str = "relu") -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"FeedForward: activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        self.net = Sequential([Linear(n_embd, 4 * n_embd, bias), ACTIVATIONS[activation](),
                               Linear(4 * n_embd, n_embd, bias), Dropout(dropout)])

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


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
