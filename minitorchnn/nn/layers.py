"""The makemore layers, hand-written on raw tensors: Linear, Embedding, flattening, activations, Dropout,
Sequential. The norms are in norm.py."""
from __future__ import annotations

import torch
from torch import Tensor

from .module import Module, check_fits, check_setting, check_sizes

INDEX_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


class Linear(Module):
    """y = x @ weight + bias, for x of shape (..., in_features) -> (..., out_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        check_sizes("Linear", in_features=in_features, out_features=out_features)
        check_fits(f"Linear({in_features}, {out_features})", in_features, out_features)
        self.in_features, self.out_features = in_features, out_features
        # divide by sqrt(fan_in) so the output starts with roughly unit variance
        self.weight = (torch.randn(in_features, out_features) / in_features**0.5).requires_grad_()
        self.bias = torch.zeros(out_features, requires_grad=True) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        self.expect(x.shape[-1] == self.in_features, "expected last dim {}, got {} (input shape {})",
                    self.in_features, x.shape[-1], x.shape)
        self.expect(x.dtype == self.weight.dtype, "expected a {} input like its weights, got {}{}",
                    self.weight.dtype, x.dtype, lambda: dtype_hint(x), error=TypeError)
        if self.bias is None:
            return x @ self.weight  # (..., out_features)
        if x.ndim == 2:  # the same sum in one call; its rounding is what every committed loss was measured with
            return torch.addmm(self.bias, x, self.weight)
        return x @ self.weight + self.bias  # (..., out_features)

    def short_name(self) -> str:
        return f"Linear({self.in_features}→{self.out_features})"

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table: integer indices of shape (...) -> vectors of shape (..., embedding_dim)."""

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        check_sizes("Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        check_fits(f"Embedding({num_embeddings}, {embedding_dim})", num_embeddings, embedding_dim)
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = torch.randn(num_embeddings, embedding_dim, requires_grad=True)

    def forward(self, idx: Tensor) -> Tensor:
        self.expect(idx.dtype in INDEX_DTYPES, "expected integer indices, got dtype {}", idx.dtype, error=TypeError)
        check_index_range(self, idx, self.num_embeddings)
        return self.weight[idx]  # (..., embedding_dim): row idx of the table, for every index

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


def check_index_range(layer: Module, idx: Tensor, n: int) -> None:
    """Indices must lie in [0, n): a negative one would silently wrap around to the end of the table."""
    if idx.device.type != "cpu":  # on a GPU a host-side check would stall the pipeline: assert on the device
        torch._assert_async(((idx >= 0) & (idx < n)).all(), f"{layer.short_name()}: index out of range")
        return
    lo, hi = (int(t) for t in torch.aminmax(idx)) if idx.numel() else (0, 0)
    layer.expect(0 <= lo and hi < n, "got index {}, expected indices in [0, {})", hi if lo >= 0 else lo, n,
                 error=IndexError)


class FlattenConsecutive(Module):
    """Concatenate n consecutive time steps: (B, T, C) -> (B, T // n, C * n); (B, C * n) when T == n."""

    def __init__(self, n: int) -> None:
        check_sizes("FlattenConsecutive", n=n)
        self.n = n

    def forward(self, x: Tensor) -> Tensor:
        self.expect(x.ndim == 3, "expected a 3-D (B, T, C) input, got shape {}", x.shape)
        B, T, C = x.shape
        self.expect(T % self.n == 0, "n={} does not divide the time dimension T={}", self.n, T)
        x = x.reshape(B, T // self.n, C * self.n)  # each row: n positions' channels side by side
        return x.squeeze(1) if x.shape[1] == 1 else x  # only the time axis: a batch of one stays a batch

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
        check_setting("Dropout", "p", p, 0, 1, "[)")
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
        bad = [type(layer).__name__ for layer in self.layers if not isinstance(layer, Module)]
        if bad:
            raise TypeError(f"Sequential expected minitorchnn layers, got {bad[0]}")
        self.block_size = block_size

    def named_children(self):
        # name sub-layers by position, as torch.nn.Sequential does ("0.weight", "1.gamma", ...)
        return ((str(i), layer) for i, layer in enumerate(self.layers))

    def forward(self, x: Tensor) -> Tensor:
        self.expect(self.block_size is None or (x.ndim == 2 and x.shape[1] == self.block_size),
                    "was built for block_size={}: it expected token ids of shape (B, {}), got {}",
                    self.block_size, self.block_size, x.shape)
        for layer in self.layers:
            x = layer(x)
        return x

    def short_name(self) -> str:
        return f"Sequential of {len(self.layers)} layers"

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)


def dtype_hint(x: Tensor) -> str:
    """What a wrong-dtype error adds: integer token ids go into an Embedding first."""
    return " (token ids go into an Embedding first)" if not x.is_floating_point() else ""
