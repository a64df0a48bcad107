"""Cross entropy of logits against integer targets (the maths is in backprop.py)."""
from __future__ import annotations

import torch
from torch import Tensor

from .backprop import CrossEntropyFunction


def cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean negative log-likelihood of targets: logits (N, V) with targets (N,), or (B, T, V) with (B, T)."""
    if logits.ndim not in (2, 3):
        raise ValueError(f"cross_entropy expected logits of shape (N, V) or (B, T, V), got {tuple(logits.shape)}")
    if targets.shape != logits.shape[:-1]:
        raise ValueError(
            f"cross_entropy expected targets of shape {tuple(logits.shape[:-1])} for logits {tuple(logits.shape)}, "
            f"got {tuple(targets.shape)}"
        )
    if targets.dtype != torch.int64:
        raise TypeError(f"cross_entropy expected int64 (long) targets, got {targets.dtype}")
    V = logits.shape[-1]
    logits, targets = logits.reshape(-1, V), targets.reshape(-1)  # (N, V), (N,)
    try:
        # the stable log-sum-exp and the gradient softmax - one_hot are written out in backprop.py
        return CrossEntropyFunction.apply(logits, targets)
    except RuntimeError as err:
        # on the CPU, gather() refuses a target outside [0, V) (negative ones too); say it plainly
        if "out of bounds" not in str(err):
            raise
        bad = targets[(targets < 0) | (targets >= V)][0].item()
        raise IndexError(f"cross_entropy got a target of {bad}, expected classes in [0, {V})") from None
