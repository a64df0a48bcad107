"""Cross entropy of logits against integer targets (the maths is in backprop.py)."""
from __future__ import annotations

import torch
from torch import Tensor

from .backprop import CrossEntropyFunction
from .module import check


def cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean negative log-likelihood of targets: logits (N, V) with targets (N,), or (B, T, V) with (B, T)."""
    check(logits.ndim in (2, 3), "cross_entropy expected logits of shape (N, V) or (B, T, V), got {}",
          logits.shape)
    check(targets.shape == logits.shape[:-1], "cross_entropy expected targets of shape {} for logits {}, got {}",
          logits.shape[:-1], logits.shape, targets.shape)
    check(targets.dtype == torch.int64, "cross_entropy expected int64 (long) targets, got {}", targets.dtype,
          error=TypeError)
    V = logits.shape[-1]
    logits, targets = logits.reshape(-1, V), targets.reshape(-1)  # (N, V), (N,)
    try:  # the stable log-sum-exp and the gradient softmax - one_hot are written out in backprop.py
        return CrossEntropyFunction.apply(logits, targets)
    except RuntimeError as err:  # on the CPU, gather() refuses a target outside [0, V): say it plainly
        if "out of bounds" not in str(err):
            raise
        bad = targets[(targets < 0) | (targets >= V)][0].item()
        raise IndexError(f"cross_entropy got a target of {bad}, expected classes in [0, {V})") from None
