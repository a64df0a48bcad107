"""Cross entropy written out with a stable log-sum-exp."""
from __future__ import annotations

import torch
from torch import Tensor


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
    logits = logits.reshape(-1, V)  # (N, V)
    targets = targets.reshape(-1, 1)  # (N, 1)
    # exp() of a logit of 100 overflows float32; subtracting the row max first keeps every exp() <= 1,
    # and log-sum-exp(x) = m + log(sum(exp(x - m))) for any m. The max is a constant for the gradient.
    m = logits.detach().amax(dim=1, keepdim=True)  # (N, 1)
    log_sum_exp = m + (logits - m).exp().sum(dim=1, keepdim=True).log()  # (N, 1)
    if targets.device.type == "cpu":
        lo, hi = torch.aminmax(targets) if targets.numel() else (0, 0)
        if lo < 0 or hi >= V:
            raise IndexError(f"cross_entropy got a target of {int(lo) if lo < 0 else int(hi)}, expected classes in [0, {V})")
    target_logit = logits.gather(1, targets)  # (N, 1)
    return (log_sum_exp - target_logit).mean()
