"""Data parallelism with torch.distributed: the same model on every process, gradients averaged by hand.

Launch any training script (or `python -m minitorchnn train ...`) with torchrun:

    torchrun --nproc_per_node=2 -m minitorchnn train --model wavenet --batch-size 64

Each process ("rank") holds a full copy of the model. Rank 0's weights are broadcast at the start so
every copy begins equal; then at every step each rank takes its own slice of the global batch, runs
forward and backward on it, and `all_reduce_gradients` averages the gradients over the ranks. After
that every rank holds the gradient of the mean loss over the whole global batch, takes the same
update, and the copies stay equal without ever sending a weight again. Only rank 0 prints and saves.
"""
from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor

from ..nn.backprop import update_running_stats
from ..devices import default_device
from ..nn.norm import BatchNorm1d
from ..nn.module import Module


def world_size() -> int:
    """How many processes train together (1 when torch.distributed is not initialised)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's number, 0 .. world_size() - 1 (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def split_hint() -> str:
    """The reminder a too-small batch error adds under data parallelism: each process gets only its share."""
    n = world_size()
    if n == 1:
        return ""
    return f" (the batch is split over the {n} data-parallel processes: each gets batch_size / {n} rows)"


def is_main() -> bool:
    """Rank 0: the process that prints, logs and writes checkpoints."""
    return rank() == 0


def init(backend: str | None = None) -> torch.device:
    """Join the process group torchrun describes in RANK, WORLD_SIZE, MASTER_ADDR, ...; returns this
    rank's device. Without torchrun's variables nothing happens and the run is a single process."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return default_device()
    if torch.cuda.is_available():
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local_rank)  # one GPU per process
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if device.type == "cuda" else "gloo"),
                                timeout=timedelta(minutes=10))
    return device


def launch_local(fn, nprocs: int, *args, backend: str = "gloo") -> None:
    """Run fn(*args) in nprocs processes on this machine, as torchrun would: for tests, benchmarks and
    notebooks. gloo works on the CPU; "nccl" needs one GPU per process. fn must be importable (defined at
    the top level of a module)."""
    if not isinstance(nprocs, int) or isinstance(nprocs, bool) or nprocs < 1:
        raise ValueError(f"launch_local expected nprocs, the number of processes, >= 1, got {nprocs!r}")
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_local_worker, args=(nprocs, port, fn, args, backend), nprocs=nprocs, join=True)


def _local_worker(local_rank: int, nprocs: int, port: int, fn, args, backend: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(local_rank),
                      LOCAL_RANK=str(local_rank), WORLD_SIZE=str(nprocs))
    torch.set_num_threads(1)  # the processes share the machine's cores
    init(backend)
    try:
        fn(*args)
    finally:
        shutdown()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every rank gets here (nothing to wait for in a single process)."""
    if world_size() > 1:
        dist.barrier()


def broadcast_parameters(model: Module, src: int = 0) -> None:
    """Copy rank src's parameters and buffers (running statistics) to every other rank."""
    with torch.no_grad():
        for _, t in model._named_tensors():
            dist.broadcast(t, src)


def all_reduce_gradients(params: list[Tensor]) -> None:
    """Replace each parameter's gradient by its mean over the ranks: the lesson of data parallelism.

    Rank r's gradient is that of the mean loss over its B / W examples; the mean of the W gradients is
    the gradient of the mean loss over all B examples. All gradients travel in one flat buffer: one
    message instead of one per tensor.
    """
    world = world_size()
    if world == 1:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world
    offset = 0
    for p, g in zip(params, grads):
        p.grad = flat[offset:offset + g.numel()].view_as(p)
        offset += g.numel()


def average(t: Tensor) -> Tensor:
    """The mean of a tensor over the ranks (losses for logging)."""
    if world_size() > 1:
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= world_size()
    return t


def shard(batch_size: int) -> slice:
    """This rank's rows of a global batch of batch_size: rank r gets rows r * B/W .. (r + 1) * B/W."""
    world = world_size()
    if batch_size % world:
        raise ValueError(f"the batch size {batch_size} must be divisible by the number of processes {world}")
    per_rank = batch_size // world
    return slice(rank() * per_rank, (rank() + 1) * per_rank)


class SyncBatchNormFunction(torch.autograd.Function):
    """Batch norm of x (N_r, C) over the rows of every rank together; forward and backward all-reduce sums."""

    @staticmethod
    def forward(ctx, x: Tensor, gamma: Tensor, beta: Tensor, eps: float, running_mean: Tensor,
                running_var: Tensor, momentum: float):
        count = torch.tensor([float(x.shape[0])], device=x.device, dtype=x.dtype)
        sums = torch.cat([x.sum(0), count])  # (C + 1,): the channel sums and the row count, one message
        dist.all_reduce(sums)
        n = int(sums[-1].item())
        mean = sums[:-1] / n
        xc = x - mean
        var = (xc * xc).sum(0)  # two passes (mean, then squares) is as exact as the single-process layer
        dist.all_reduce(var)
        var /= n  # biased, as in training mode
        rstd = torch.rsqrt(var + eps)
        x_hat = xc * rstd
        update_running_stats(running_mean, running_var, mean, var, n, momentum)  # as BatchNorm1d does
        ctx.save_for_backward(x_hat, gamma, rstd)
        ctx.n = n
        return torch.addcmul(beta, x_hat, gamma)

    @staticmethod
    def backward(ctx, dout: Tensor):
        x_hat, gamma, rstd = ctx.saved_tensors
        dbeta = dout.sum(0)  # this rank's share; all_reduce_gradients adds the others' later
        dgamma = (dout * x_hat).sum(0)
        # every row of every rank moved the shared mean and variance: the correction terms need the
        # sums over all ranks, the same formula as BatchNormFunction with N = all rows
        totals = torch.cat([dbeta, dgamma])
        dist.all_reduce(totals)
        sum_dout, sum_dout_xhat = totals.chunk(2)
        dx = (gamma * rstd / ctx.n) * (ctx.n * dout - sum_dout - x_hat * sum_dout_xhat)
        return dx, dgamma, dbeta, None, None, None, None


class SyncBatchNorm1d(BatchNorm1d):
    """BatchNorm1d whose training statistics are taken over the batches of all ranks together.

    Without it each rank normalises with the mean and variance of its own B / W rows: noisier
    statistics than one process with batch B, and running statistics that differ between ranks.
    With one process it is exactly BatchNorm1d.
    """

    @classmethod
    def from_batchnorm(cls, bn: BatchNorm1d) -> SyncBatchNorm1d:
        if type(bn) not in (BatchNorm1d, cls):
            raise TypeError(f"SyncBatchNorm1d replaces BatchNorm1d layers, not {bn!r}")
        new = cls(bn.num_features, bn.eps, bn.momentum)
        new.load_state_dict(bn.state_dict())  # gamma, beta and the running statistics
        return new

    def normalise(self, rows: Tensor) -> Tensor:
        # BatchNorm1d.forward checks the input and cuts it into rows (N_r, C); only the statistics differ
        if world_size() == 1:
            return super().normalise(rows)
        return SyncBatchNormFunction.apply(rows, self.gamma, self.beta, self.eps, self.running_mean,
                                           self.running_var, self.momentum)


def sync_batchnorm(model: Module) -> Module:
    """A copy of model with every BatchNorm1d replaced by a SyncBatchNorm1d holding the same values."""
    from ..lab.swap import swap

    return swap(model, BatchNorm1d, SyncBatchNorm1d.from_batchnorm)


__all__ = ["SyncBatchNorm1d", "all_reduce_gradients", "average", "barrier", "broadcast_parameters",
           "init", "is_main", "launch_local", "rank", "shard", "shutdown", "sync_batchnorm", "world_size"]
