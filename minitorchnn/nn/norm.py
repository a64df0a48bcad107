"""The normalisation layers: BatchNorm1d (with makemore part 5's 3-D fix), its buggy first version, LayerNorm1d.

Both norms compute x_hat = (x - mean) / sqrt(var + eps) and return gamma * x_hat + beta. BatchNorm takes
mean and var over the batch (one pair per channel), LayerNorm over the channels (one pair per position).
The statistics are computed here, where you read them; backprop.py does the normalising with the backward
pass derived by hand, which also accounts for every x moving the mean and the variance.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .backprop import batch_norm, layer_norm, update_running_stats
from .layers import dtype_hint
from .module import Module, check_setting, check_sizes


class BatchNorm1d(Module):
    """Normalise each channel over the batch: (B, C) over dim 0, (B, T, C) over dims (0, 1).

    Channels are last, as in the lectures (torch.nn.BatchNorm1d wants (B, C, T) instead).
    Training normalises with the biased batch variance and tracks the unbiased one in
    running_var, exactly as torch.nn.BatchNorm1d does; eval mode uses the running statistics.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        check_sizes("BatchNorm1d", num_features=num_features)
        check_setting("BatchNorm1d", "eps", eps, 0, 1, "(]")
        check_setting("BatchNorm1d", "momentum", momentum, 0, 1)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.gamma = torch.ones(num_features, requires_grad=True)
        self.beta = torch.zeros(num_features, requires_grad=True)
        self.running_mean = torch.zeros(num_features)
        self.running_var = torch.ones(num_features)

    def forward(self, x: Tensor) -> Tensor:
        self.expect(x.ndim in (2, 3), "expected a 2-D (B, C) or 3-D (B, T, C) input, got shape {}", x.shape)
        check_channels(self, x, self.gamma)
        if not self.training:  # eval: the statistics gathered in training, the same for every batch
            return (x - self.running_mean) * (self.gamma * torch.rsqrt(self.running_var + self.eps)) + self.beta
        # the makemore part 5 fix: normalise a 3-D input over batch AND time, so view (B, T, C) as
        # (B * T, C) rows and take the statistics over all of them
        rows = x.reshape(-1, self.num_features)  # (N, C)
        self.expect(len(rows) > 1, "needs more than 1 value per channel in training, got shape {}{}",
                    x.shape, _split_hint)
        return self.normalise(rows).view_as(x)

    def normalise(self, rows: Tensor) -> Tensor:
        """Training mode, rows (N, C): normalise with the batch's statistics and move the running ones."""
        with torch.no_grad():  # the hand-written backward pass differentiates through these itself
            mean = rows.mean(0)  # (C,)
            xc = rows - mean  # (N, C): centred
            var = (xc * xc).mean(0)  # (C,), biased (divided by N), as torch normalises
        update_running_stats(self.running_mean, self.running_var, mean, var, len(rows), self.momentum)
        return batch_norm(rows, xc, var, self.gamma, self.beta, self.eps)  # gamma * xc / sqrt(var + eps) + beta

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1dPerPosition(BatchNorm1d):
    """The lecture's first, buggy BatchNorm on 3-D input: statistics over the batch only, one set per position.

    (B, T, C) with T == positions: each (t, c) pair gets its own mean and variance, over B values
    instead of B * T; gamma and beta are still shared per channel. Kept only to re-run the "fix the
    BatchNorm bug" step of the WaveNet lecture; use BatchNorm1d.
    """

    def __init__(self, num_features: int, positions: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__(num_features, eps, momentum)
        check_sizes("BatchNorm1dPerPosition", positions=positions)
        self.positions = positions
        self.running_mean = torch.zeros(positions, num_features)
        self.running_var = torch.ones(positions, num_features)

    def forward(self, x: Tensor) -> Tensor:
        self.expect(x.ndim == 3 and x.shape[1] == self.positions, "expected a (B, {}, C) input, got shape {}",
                    self.positions, x.shape)
        check_channels(self, x, self.gamma)
        if not self.training:
            return (x - self.running_mean) * torch.rsqrt(self.running_var + self.eps) * self.gamma + self.beta
        B, T, C = x.shape
        rows = x.reshape(B, T * C)  # every (position, channel) pair is its own feature, normalised over B
        with torch.no_grad():
            mean = rows.mean(0)  # (T * C,): the bug, one mean per position
            xc = rows - mean
            var = (xc * xc).mean(0)
        update_running_stats(self.running_mean.view(-1), self.running_var.view(-1), mean, var, B, self.momentum)
        return batch_norm(rows, xc, var, self.gamma.repeat(T), self.beta.repeat(T), self.eps).view(B, T, C)

    def extra_repr(self) -> str:
        return f"{self.num_features}, positions={self.positions}, eps={self.eps}, momentum={self.momentum}"


class LayerNorm1d(Module):
    """Normalise each position over its channels: (..., C) -> (..., C), as torch.nn.LayerNorm(C)."""

    def __init__(self, num_features: int, eps: float = 1e-5, bias: bool = True) -> None:
        check_sizes("LayerNorm1d", num_features=num_features)
        check_setting("LayerNorm1d", "eps", eps, 0, 1, "(]")
        self.num_features, self.eps = num_features, eps
        self.gamma = torch.ones(num_features, requires_grad=True)
        # without a bias, beta stays a zero buffer (as torch.nn.LayerNorm(bias=False)): nothing learns it
        self.beta = torch.zeros(num_features, requires_grad=bias)

    def forward(self, x: Tensor) -> Tensor:
        check_channels(self, x, self.gamma)
        with torch.no_grad():  # as in BatchNorm1d, backprop.py differentiates through the statistics
            mean = x.mean(-1, keepdim=True)  # (..., 1): one mean per position, over its C channels
            xc = x - mean  # (..., C)
            var = (xc * xc).mean(-1, keepdim=True)  # (..., 1), biased, as torch.nn.LayerNorm
        return layer_norm(x, xc, var, self.gamma, self.beta, self.eps)  # gamma * xc / sqrt(var + eps) + beta

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}" + ("" if self.beta.requires_grad else ", bias=False")


def check_channels(layer: Module, x: Tensor, gamma: Tensor) -> None:
    """A norm's input has its channels last, and the dtype of its weights."""
    layer.expect(x.shape[-1] == len(gamma), "expected {} channels in the last dim, got {} (input shape {})",
                 len(gamma), x.shape[-1], x.shape)
    layer.expect(x.dtype == gamma.dtype, "expected a {} input like its weights, got {}{}", gamma.dtype, x.dtype,
                 lambda: dtype_hint(x), error=TypeError)


def _split_hint() -> str:
    """Under data parallelism, the reminder that each process sees only its share of the batch."""
    from ..parallel.distributed import split_hint  # imported only on the error path

    return split_hint()
