"""Hand-written backward passes for batch norm, layer norm and cross entropy.

Autograd would differentiate these layers op by op: a dozen small kernels and graph nodes each.
As in makemore part 4 ("becoming a backprop ninja"), we derive each gradient on paper once and
write it as a few tensor expressions. tests/nn/test_backprop.py checks every formula with
torch.autograd.gradcheck in float64.
"""
from __future__ import annotations

import torch
from torch import Tensor


@torch.no_grad()
def update_running_stats(running_mean: Tensor, running_var: Tensor, mean: Tensor, var: Tensor, n: int,
                         momentum: float) -> None:
    """Move the running statistics towards the batch's, as torch.nn.BatchNorm1d does: an exponential
    moving average of the mean, and of the variance made unbiased (Bessel's n / (n - 1)), though the
    batch itself is normalised with the biased one. BatchNorm1d and SyncBatchNorm1d both call this."""
    running_mean.lerp_(mean, momentum)  # running += momentum * (batch - running)
    running_var.mul_(1 - momentum).add_(var, alpha=momentum * n / (n - 1))


class BatchNormFunction(torch.autograd.Function):
    """gamma * (x - mean) / sqrt(var + eps) + beta for rows x (N, C), given xc = x - mean and var (C,) over the rows.

    x only carries the gradient: the forward pass uses xc, which the layer computed with the mean."""

    @staticmethod
    def forward(ctx, x: Tensor, xc: Tensor, var: Tensor, gamma: Tensor, beta: Tensor, eps: float):
        rstd = torch.rsqrt(var + eps)  # (C,): 1 / sqrt(var + eps)
        x_hat = xc.mul_(rstd)  # (N, C): zero mean, unit variance per channel (in place: xc is not needed again)
        ctx.save_for_backward(x_hat, gamma, rstd)
        return torch.addcmul(beta, x_hat, gamma)  # gamma * x_hat + beta

    @staticmethod
    def backward(ctx, dout: Tensor):
        x_hat, gamma, rstd = ctx.saved_tensors
        n = dout.shape[0]
        dbeta = dout.sum(0)  # (C,)
        dgamma = (dout * x_hat).sum(0)  # (C,)
        # every x also moves the batch mean and variance, hence the two correction terms:
        # dx = gamma * rstd * (dout - (dbeta + x_hat * dgamma) / n)
        correction = torch.addcmul(dbeta, x_hat, dgamma)  # dbeta + x_hat * dgamma, (N, C)
        dx = torch.sub(dout, correction, alpha=1 / n) * (gamma * rstd)  # (dout - correction / n) * gamma * rstd
        return dx, None, None, dgamma, dbeta, None  # xc and var: their part is already in dx


class LayerNormFunction(torch.autograd.Function):
    """gamma * (x - mean) / sqrt(var + eps) + beta for x (..., C), given xc = x - mean and var (..., 1) over C."""

    @staticmethod
    def forward(ctx, x: Tensor, xc: Tensor, var: Tensor, gamma: Tensor, beta: Tensor, eps: float):
        rstd = torch.rsqrt(var + eps)  # (..., 1)
        x_hat = xc.mul_(rstd)  # (..., C), in place: xc is not needed again
        ctx.save_for_backward(x_hat, gamma, rstd)
        return torch.addcmul(beta, x_hat, gamma)  # gamma * x_hat + beta

    @staticmethod
    def backward(ctx, dout: Tensor):
        x_hat, gamma, rstd = ctx.saved_tensors
        C = dout.shape[-1]
        flat_dout, flat_x_hat = dout.reshape(-1, C), x_hat.reshape(-1, C)
        dbeta = flat_dout.sum(0)  # (C,)
        dgamma = (flat_dout * flat_x_hat).sum(0)  # (C,)
        dx_hat = dout * gamma  # (..., C)
        # as in batch norm, but the statistics are per position, over the C channels
        dx = rstd * (dx_hat - dx_hat.mean(-1, keepdim=True) - x_hat * (dx_hat * x_hat).mean(-1, keepdim=True))
        return dx, None, None, dgamma, dbeta, None


def batch_norm(x: Tensor, xc: Tensor, var: Tensor, gamma: Tensor, beta: Tensor, eps: float) -> Tensor:
    """Batch norm of rows x (N, C), given xc = x - mean and the biased variance (C,); backward by hand."""
    return BatchNormFunction.apply(x, xc, var, gamma, beta, eps)


def layer_norm(x: Tensor, xc: Tensor, var: Tensor, gamma: Tensor, beta: Tensor, eps: float) -> Tensor:
    """Layer norm of x (..., C), given xc = x - mean and each position's biased variance (..., 1); backward by hand."""
    return LayerNormFunction.apply(x, xc, var, gamma, beta, eps)


class CrossEntropyFunction(torch.autograd.Function):
    """Mean of -log softmax(logits)[target] for logits (N, V) and targets (N,), with a stable log-sum-exp."""

    @staticmethod
    def forward(ctx, logits: Tensor, targets: Tensor):
        # exp() of a logit of 100 overflows float32: shift every row by its max first, so each
        # exp() is at most 1; log-sum-exp(x) = m + log(sum(exp(x - m))) holds for any m.
        shifted = logits - logits.amax(dim=1, keepdim=True)  # (N, V), max 0 per row
        target_logit = shifted.gather(1, targets[:, None])  # (N, 1)
        probs = shifted.exp_()  # in place: shifted is not needed any more
        sum_exp = probs.sum(dim=1, keepdim=True)  # (N, 1), between 1 and V
        probs.div_(sum_exp)  # softmax, kept for the backward pass
        ctx.save_for_backward(probs, targets)
        return sum_exp.log_().sub_(target_logit).mean()  # mean of log-sum-exp - target logit

    @staticmethod
    def backward(ctx, dloss: Tensor):
        probs, targets = ctx.saved_tensors
        # d loss / d logits = (softmax - one_hot(target)) / N
        scale = dloss / len(targets)
        dlogits = probs * scale
        return dlogits.scatter_add_(1, targets[:, None], (-scale).expand(len(targets), 1)), None
