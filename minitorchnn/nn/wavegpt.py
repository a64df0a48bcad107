"""WaveGPT: WaveNet's causal convolutions inside a GPT's blocks; and the parallel-stream WaveGPT it replaced."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .attention import Block, MultiHeadAttention
from .conv import DepthwiseCausalConv1d, WaveNet
from .gpt import GPT
from .layers import Linear

PLACEMENTS = ("attn", "qkv", "mlp")  # before attention, on the queries/keys/values, before the feed-forward net


def dilation_pattern(dilations: str | int | Sequence[int], n_layer: int) -> tuple[int, ...]:
    """The dilation of each block: "doubling" = 1, 2, 4, ... as in WaveNet; one int = every block; or one per block."""
    if dilations == "doubling":
        return tuple(2**layer for layer in range(n_layer))
    if isinstance(dilations, int) and not isinstance(dilations, bool):
        dilations = (dilations,) * n_layer
    if isinstance(dilations, str) or not isinstance(dilations, Sequence) or len(dilations) != n_layer:
        raise ValueError(f"WaveGPT: dilations must be 'doubling', one integer or {n_layer} integers (one per "
                         f"block), got {dilations!r}")
    for d in dilations:
        if not isinstance(d, int) or isinstance(d, bool) or d < 1:
            raise ValueError(f"WaveGPT: every dilation must be an integer >= 1, got {d!r} in {tuple(dilations)}")
    return tuple(dilations)


class ConvAttention(MultiHeadAttention):
    """Causal self-attention whose queries, keys and values each get a residual depthwise causal
    convolution after their projection, as Primer's multi-DConv-head attention: (B, T, C) -> (B, T, C)."""

    def __init__(self, n_embd: int, n_head: int, block_size: int, dropout: float, kernel_size: int,
                 dilation: int) -> None:
        super().__init__(n_embd, n_head, block_size, dropout)
        self.qkv_conv = DepthwiseCausalConv1d(3 * n_embd, kernel_size, dilation, bias=False)

    def project_qkv(self, x: Tensor) -> Tensor:
        qkv = self.qkv(x)  # (B, T, 3C)
        return qkv + self.qkv_conv(qkv)  # each of q, k, v also sees a few earlier positions' q, k, v


class WaveBlock(Block):
    """A pre-LayerNorm transformer block with residual depthwise dilated causal convolutions where
    `conv_at` says: before attention ("attn"), on Q/K/V ("qkv"), before the feed-forward net ("mlp")."""

    def __init__(self, n_embd: int, n_head: int, block_size: int, dropout: float, conv_at: Sequence[str],
                 kernel_size: int, dilation: int) -> None:
        super().__init__(n_embd, n_head, block_size, dropout)
        if "qkv" in conv_at:
            self.attn = ConvAttention(n_embd, n_head, block_size, dropout, kernel_size, dilation)
        self.conv_attn = DepthwiseCausalConv1d(n_embd, kernel_size, dilation, bias=False) if "attn" in conv_at else None
        self.conv_mlp = DepthwiseCausalConv1d(n_embd, kernel_size, dilation, bias=False) if "mlp" in conv_at else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.ln1(x)  # (B, T, C)
        if self.conv_attn is not None:
            h = h + self.conv_attn(h)  # each position mixed with a few earlier ones, channel by channel
        x = x + self.attn(h)
        h = self.ln2(x)
        if self.conv_mlp is not None:
            h = h + self.conv_mlp(h)
        return x + self.ffwd(h)


class WaveGPT(GPT):
    """ids (B, T) -> logits (B, T, vocab_size): a GPT whose every block carries a causal convolution, depthwise
    and residual, where `conv_at` says, with a dilation per block (WaveNet's doubling is "doubling").

    The defaults are what the ablation of notebook 06 (results/wavegpt_ablation.csv) found best at the CPU
    config: one convolution of width 4 before the feed-forward net, dilation 1 in every block. The
    convolutions start at zero, so an untrained WaveGPT computes exactly what its GPT would; each adds
    kernel_size * n_embd weights (the default adds 0.25% to the CPU config's parameters).
    """

    def __init__(self, vocab_size: int, *, block_size: int = 64, n_embd: int = 128, n_head: int = 4,
                 n_layer: int = 4, dropout: float = 0.0, conv_at: Sequence[str] = ("mlp",),
                 dilations: str | int | Sequence[int] = 1, kernel_size: int = 4) -> None:
        conv_at = (conv_at,) if isinstance(conv_at, str) else tuple(conv_at)
        unknown = [where for where in conv_at if where not in PLACEMENTS]
        if unknown or not conv_at:
            raise ValueError(f"WaveGPT: conv_at must name one or more of {PLACEMENTS}, got {conv_at!r}")
        self.conv_at, self.kernel_size = conv_at, kernel_size
        self.dilations = dilation_pattern(dilations, n_layer)
        super().__init__(vocab_size, block_size=block_size, n_embd=n_embd, n_head=n_head, n_layer=n_layer,
                         dropout=dropout)
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, DepthwiseCausalConv1d):
                    module.weight.zero_()

    def make_block(self, layer: int, dropout: float) -> WaveBlock:
        return WaveBlock(self.n_embd, self.n_head, self.block_size, dropout, self.conv_at, self.kernel_size,
                         self.dilations[layer])

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, conv_at={self.conv_at}, kernel_size={self.kernel_size}, "
                f"dilations={self.dilations}")


class ParallelWaveGPT(GPT):
    """The course's first causal WaveGPT, kept to show it losing: ids (B, T) -> logits (B, T, vocab_size).

    The transformer blocks and a separate WaveNet of dilated causal convolutions both read the
    embeddings; their outputs are added per position, the WaveNet's scaled by a learned `beta` (starting
    at 0, so training starts from a plain GPT), then LayerNorm and the head. Both streams are causal.
    """

    def __init__(self, vocab_size: int, *, block_size: int = 64, n_embd: int = 128, n_head: int = 4,
                 n_layer: int = 4, dropout: float = 0.0, wavenet_channels: int | None = None) -> None:
        super().__init__(vocab_size, block_size=block_size, n_embd=n_embd, n_head=n_head, n_layer=n_layer,
                         dropout=dropout)
        # the WaveNet keeps its own 1/sqrt(fan_in) init: at GPT's std 0.02 its gated layers would
        # start with outputs near zero, and beta would have nothing to mix in
        self.wavenet_channels = wavenet_channels or n_embd
        # a narrower WaveNet stream lets it match a GPT's parameter count; 1x1 projections in and out
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
        return self.head(h + self.beta * w)  # (B, T, vocab_size)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, wavenet_channels={self.wavenet_channels}"
