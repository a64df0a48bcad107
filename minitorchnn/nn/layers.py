"""The makemore layers, hand-written on raw tensors: Linear, Embedding, norms, flattening, activations, Dropout."""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from .backprop import BatchNormFunction, LayerNormFunction
from .module import Module


def _check_dtype(layer: Module, x: Tensor, weight: Tensor) -> None:
    """A float64 or integer input into a float32 layer is a mistake worth naming, not a torch error later.

    The layer's name is only written out on the error path: forward runs every step, and on a GPU
    every microsecond of Python is time the GPU waits."""
    if x.dtype != weight.dtype:
        hint = " (token ids go into an Embedding first)" if not x.is_floating_point() else ""
        raise TypeError(f"{layer.short_name()} expected a {weight.dtype} input like its weights, got {x.dtype}{hint}")


def _split_over_processes() -> str:
    """Under data parallelism, the reminder that each process sees only its share of the batch."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        n = dist.get_world_size()
        return f" (the batch is split over the {n} data-parallel processes: each gets batch_size / {n} rows)"
    return ""


class Linear(Module):
    """y = x @ weight + bias, for x of shape (..., in_features) -> (..., out_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        self.in_features, self.out_features = in_features, out_features
        # divide by sqrt(fan_in) so the output starts with roughly unit variance
        self.weight = (torch.randn(in_features, out_features) / in_features**0.5).requires_grad_()
        self.bias = torch.zeros(out_features, requires_grad=True) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        _check_dtype(self, x, self.weight)
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"{self.short_name()} expected last dim {self.in_features}, got {x.shape[-1]} "
                f"(input shape {tuple(x.shape)})"
            )
        if self.bias is None:
            return x @ self.weight  # (..., out_features)
        if x.ndim == 2:
            return torch.addmm(self.bias, x, self.weight)  # bias + x @ weight in one kernel
        return x @ self.weight + self.bias

    def short_name(self) -> str:
        return f"Linear({self.in_features}→{self.out_features})"

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table: integer indices of shape (...) -> vectors of shape (..., embedding_dim)."""

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = torch.randn(num_embeddings, embedding_dim, requires_grad=True)

    def forward(self, idx: Tensor) -> Tensor:
        if idx.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
            raise TypeError(f"{self!r} expected integer indices, got dtype {idx.dtype}")
        if idx.device.type == "cpu":
            # a negative index would silently wrap around, so check both ends (cheap on the CPU)
            lo, hi = (t.item() for t in torch.aminmax(idx)) if idx.numel() else (0, 0)
            if lo < 0 or hi >= self.num_embeddings:
                bad = idx[(idx < 0) | (idx >= self.num_embeddings)][0].item()
                raise IndexError(f"{self!r} got index {bad}, expected indices in [0, {self.num_embeddings})")
        else:
            # on a GPU a host-side check would stall the pipeline: assert on the device instead
            torch._assert_async(((idx >= 0) & (idx < self.num_embeddings)).all(), "Embedding index out of range")
        return self.weight[idx]  # (..., embedding_dim)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


def _check_channels(layer: Module, x: Tensor, num_features: int) -> None:
    if x.shape[-1] != num_features:
        raise ValueError(
            f"{layer!r} expected {num_features} channels in the last dim, got {x.shape[-1]} "
            f"(input shape {tuple(x.shape)})"
        )


class BatchNorm1d(Module):
    """Normalise each channel over the batch: (B, C) over dim 0, (B, T, C) over dims (0, 1).

    Channels are last, as in the lectures (torch.nn.BatchNorm1d wants (B, C, T) instead).
    Training normalises with the biased batch variance and tracks the unbiased one in
    running_var, exactly as torch.nn.BatchNorm1d does; eval mode uses the running statistics.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.gamma = torch.ones(num_features, requires_grad=True)
        self.beta = torch.zeros(num_features, requires_grad=True)
        self.running_mean = torch.zeros(num_features)
        self.running_var = torch.ones(num_features)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (2, 3):
            raise ValueError(f"{self!r} expected a 2-D (B, C) or 3-D (B, T, C) input, got shape {tuple(x.shape)}")
        _check_channels(self, x, self.num_features)
        _check_dtype(self, x, self.gamma)
        if not self.training:
            scale = self.gamma * torch.rsqrt(self.running_var + self.eps)  # (C,)
            return (x - self.running_mean) * scale + self.beta
        # the makemore part 5 fix: a 3-D input is normalised over batch AND time, not just batch,
        # so view (B, T, C) as (B * T, C) rows and normalise over all of them
        return self._normalise_rows(x.reshape(-1, self.num_features), x.shape).view_as(x)

    def _normalise_rows(self, rows: Tensor, input_shape: torch.Size) -> Tensor:
        """Training-mode batch norm of rows (N, C) over dim 0, updating the running statistics."""
        if rows.shape[0] < 2:
            raise ValueError(f"{self!r} needs more than 1 value per channel in training, "
                             f"got shape {tuple(input_shape)}{_split_over_processes()}")
        return BatchNormFunction.apply(rows, self.gamma, self.beta, self.eps,
                                       self.running_mean, self.running_var, self.momentum)

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
        self.positions = positions
        self.running_mean = torch.zeros(positions, num_features)
        self.running_var = torch.ones(positions, num_features)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 3 or x.shape[1] != self.positions:
            raise ValueError(f"{self!r} expected a (B, {self.positions}, C) input, got shape {tuple(x.shape)}")
        _check_channels(self, x, self.num_features)
        if not self.training:
            return (x - self.running_mean) * torch.rsqrt(self.running_var + self.eps) * self.gamma + self.beta
        B, T, C = x.shape
        # (B, T, C) -> (B, T * C): every (position, channel) pair is its own feature, normalised over B
        out = BatchNormFunction.apply(x.reshape(B, T * C), self.gamma.repeat(T), self.beta.repeat(T), self.eps,
                                      self.running_mean.view(-1), self.running_var.view(-1), self.momentum)
        return out.view(B, T, C)

    def extra_repr(self) -> str:
        return f"{self.num_features}, positions={self.positions}, eps={self.eps}, momentum={self.momentum}"


class LayerNorm1d(Module):
    """Normalise each position over its channels: (..., C) -> (..., C), as torch.nn.LayerNorm(C)."""

    def __init__(self, num_features: int, eps: float = 1e-5, bias: bool = True) -> None:
        self.num_features, self.eps = num_features, eps
        self.gamma = torch.ones(num_features, requires_grad=True)
        # without a bias, beta stays a zero buffer (as torch.nn.LayerNorm(bias=False)): nothing learns it
        self.beta = torch.zeros(num_features, requires_grad=bias)

    def forward(self, x: Tensor) -> Tensor:
        _check_channels(self, x, self.num_features)
        _check_dtype(self, x, self.gamma)
        # biased variance and eps inside the square root, as torch.nn.LayerNorm (backprop.py has the maths)
        return LayerNormFunction.apply(x, self.gamma, self.beta, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}" + ("" if self.beta.requires_grad else ", bias=False")


class FlattenConsecutive(Module):
    """Concatenate n consecutive time steps: (B, T, C) -> (B, T // n, C * n); (B, C * n) when T == n."""

    def __init__(self, n: int) -> None:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"FlattenConsecutive expected n >= 1 positions to fuse, got {n!r}")
        self.n = n

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 3:
            raise ValueError(f"{self!r} expected a 3-D (B, T, C) input, got shape {tuple(x.shape)}")
        B, T, C = x.shape
        if T % self.n != 0:
            raise ValueError(f"{self!r}: n={self.n} does not divide the time dimension T={T}")
        x = x.reshape(B, T // self.n, C * self.n)
        if x.shape[1] == 1:
            x = x.squeeze(1)  # only the time axis: a batch of one must stay a batch
        return x

    def extra_repr(self) -> str:
        return str(self.n)


class Flatten(Module):
    """Concatenate everything after the batch dim: (B, T, C) -> (B, T * C)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], -1)


class Tanh(Module):
    """Elementwise tanh, any shape."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(x)


class ReLU(Module):
    """Elementwise max(x, 0), any shape."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x)


class GELU(Module):
    """Elementwise x * Phi(x), Phi the standard normal CDF (the exact form of torch.nn.GELU), any shape."""

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * x * (1.0 + torch.erf(x * 0.5**0.5))


class Dropout(Module):
    """Zero each entry with probability p in training (scaling the rest by 1 / (1 - p)); identity in eval."""

    def __init__(self, p: float = 0.0) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout expected 0 <= p < 1, got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand_like(x) >= self.p
        return x * keep / (1.0 - self.p)  # rescale so the expected value is unchanged

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Sequential(Module):
    """Apply layers one after another; parameters() lists those of every layer, in order.

    With block_size, the input must be (B, block_size) token ids: a names model built for 8 characters
    of context refuses 16 instead of returning logits of the wrong shape.
    """

    def __init__(self, layers: list[Module], block_size: int | None = None) -> None:
        self.layers = list(layers)
        if not all(isinstance(layer, Module) for layer in self.layers):
            bad = next(layer for layer in self.layers if not isinstance(layer, Module))
            raise TypeError(f"Sequential expected minitorchnn layers, got {type(bad).__name__}")
        self.block_size = block_size

    def named_children(self):
        # name sub-layers by position, as torch.nn.Sequential does ("0.weight", "1.gamma", ...)
        return ((str(i), layer) for i, layer in enumerate(self.layers))

    def forward(self, x: Tensor) -> Tensor:
        if self.block_size is not None and (x.ndim != 2 or x.shape[1] != self.block_size):
            raise ValueError(f"this model was built for block_size={self.block_size}: it expected token ids of "
                             f"shape (B, {self.block_size}), got {tuple(x.shape)}")
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)
