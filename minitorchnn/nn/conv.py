"""Dilated causal convolutions, full and depthwise, and the WaveNet stack of the WaveNet paper; channels last."""
from __future__ import annotations

import torch
from torch import Tensor

from .layers import Linear
from .module import Module, check_sizes


class CausalConv1d(Module):
    """out[t] = bias + sum_j x[t - (kernel_size - 1 - j) * dilation] @ weight[j]: (B, T, C_in) -> (B, T, C_out).

    Causal: position t sees only positions <= t. The input is padded on the left with
    (kernel_size - 1) * dilation zeros, then each tap is one matmul over the channels.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 2, dilation: int = 1) -> None:
        check_sizes("CausalConv1d", in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size,
                    dilation=dilation)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.dilation = kernel_size, dilation
        fan_in = in_channels * kernel_size
        self.weight = (torch.randn(kernel_size, in_channels, out_channels) / fan_in**0.5).requires_grad_()
        self.bias = torch.zeros(out_channels, requires_grad=True)

    def forward(self, x: Tensor) -> Tensor:
        self.expect(x.ndim == 3 and x.shape[-1] == self.in_channels, "expected input (B, T, {}), got {}",
                    self.in_channels, x.shape)
        B, T, _ = x.shape
        pad = (self.kernel_size - 1) * self.dilation
        x = torch.cat([x.new_zeros(B, pad, self.in_channels), x], dim=1)  # (B, pad + T, C_in)
        out = self.bias
        for j in range(self.kernel_size):  # tap j looks (kernel_size - 1 - j) * dilation steps back
            out = out + x[:, j * self.dilation: j * self.dilation + T] @ self.weight[j]
        return out  # (B, T, C_out)

    @property
    def receptive_field(self) -> int:
        return (self.kernel_size - 1) * self.dilation + 1

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, dilation={self.dilation}"


class DepthwiseCausalConv1d(Module):
    """out[:, t, c] = bias[c] + sum_j x[:, t - (kernel_size - 1 - j) * dilation, c] * weight[j, c]; (B, T, C) -> same.

    Depthwise: every channel is convolved with its own kernel and channels never mix, so a layer costs
    kernel_size * C weights instead of kernel_size * C * C. It mixes each position with a few earlier
    ones (a cheap, local "look back"); attention and the feed-forward net do the mixing across channels.
    """

    def __init__(self, channels: int, kernel_size: int = 4, dilation: int = 1, bias: bool = True) -> None:
        check_sizes("DepthwiseCausalConv1d", channels=channels, kernel_size=kernel_size, dilation=dilation)
        self.channels, self.kernel_size, self.dilation = channels, kernel_size, dilation
        self.weight = (torch.randn(kernel_size, channels) / kernel_size**0.5).requires_grad_()  # fan_in = kernel_size
        self.bias = torch.zeros(channels, requires_grad=True) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        self.expect(x.ndim == 3 and x.shape[-1] == self.channels, "expected input (B, T, {}), got {}", self.channels,
                    x.shape)
        T = x.shape[1]
        pad = (self.kernel_size - 1) * self.dilation
        x = torch.cat([x.new_zeros(x.shape[0], pad, self.channels), x], dim=1)  # (B, pad + T, C)
        out = x[:, pad:] * self.weight[-1]  # the last tap is the current position
        for j in range(self.kernel_size - 1):  # tap j looks (kernel_size - 1 - j) * dilation steps back
            out = out + x[:, j * self.dilation: j * self.dilation + T] * self.weight[j]
        return out if self.bias is None else out + self.bias  # (B, T, C)

    @property
    def receptive_field(self) -> int:
        return (self.kernel_size - 1) * self.dilation + 1

    def extra_repr(self) -> str:
        return (f"{self.channels}, kernel_size={self.kernel_size}, dilation={self.dilation}"
                + ("" if self.bias is not None else ", bias=False"))


class WaveNetLayer(Module):
    """One residual layer of WaveNet: gated activation tanh(filter) * sigmoid(gate) of a dilated causal
    convolution, a 1x1 convolution back into the residual stream, and one out to the skip connections."""

    def __init__(self, channels: int, dilation: int) -> None:
        self.conv = CausalConv1d(channels, 2 * channels, kernel_size=2, dilation=dilation)  # filter and gate
        self.residual = Linear(channels, channels)  # a 1x1 convolution is a Linear on the channels
        self.skip = Linear(channels, channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        filt, gate = self.conv(x).chunk(2, dim=-1)  # 2 x (B, T, C)
        z = torch.tanh(filt) * torch.sigmoid(gate)
        return x + self.residual(z), self.skip(z)  # (residual stream, skip output)


class WaveNet(Module):
    """Stacked WaveNet layers with dilations 1, 2, 4, ... until the receptive field covers block_size:
    (B, T, channels) -> (B, T, channels), causal at every position."""

    def __init__(self, channels: int, block_size: int) -> None:
        check_sizes("WaveNet", channels=channels, block_size=block_size)
        self.channels, self.block_size = channels, block_size
        dilations, field = [], 1
        while field < block_size:
            dilations.append(2 ** len(dilations))
            field += dilations[-1]  # each kernel-2 layer reaches `dilation` steps further back
        self.receptive_field = field
        self.layers = [WaveNetLayer(channels, d) for d in dilations]
        self.out = Linear(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        skips = torch.zeros_like(x)
        for layer in self.layers:
            x, skip = layer(x)
            skips = skips + skip
        return self.out(torch.relu(skips))  # (B, T, channels)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, block_size={self.block_size}, receptive_field={self.receptive_field}"
