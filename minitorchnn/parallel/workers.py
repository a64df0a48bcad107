"""What notebook 08 and benchmarks/ddp_scaling.py run in their worker processes, and the threads that
stand in for processes in the notebook's checks.

A process started by `distributed.launch_local` imports the function it runs: a function defined in a
notebook lives only in that notebook's kernel, so the workers live here.
"""
from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
import time
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

import torch
import torch.distributed as dist

from . import distributed
from ..data.corpus import shakespeare_dataset
from ..data.names import names_dataset
from ..nn.gpt import GPT
from ..nn import Embedding, FlattenConsecutive, LayerNorm1d, Linear, Sequential, Tanh
from ..nn.loss import cross_entropy
from ..fileio import staged, write_atomic
from ..models import MODELS, mlp
from ..nn.optim import SGD, StepDecay
from ..train.register import RegisterModel

NAMES_MODELS = ("layernorm", "batchnorm", "sync-batchnorm")
SNAPSHOT_STEPS = (1, 10, 100, 1_000, 3_000, 10_000)  # train_names keeps the weights after these steps
GPT_CONFIG = dict(block_size=MODELS["gpt"].block_size, **MODELS["gpt"].shape)  # the course's CPU GPT


def names_model(name: str) -> Sequential:
    """The block-3 MLP of notebook 01 with a LayerNorm, a BatchNorm or a synchronised BatchNorm (seed 0)."""
    torch.manual_seed(0)
    if name == "layernorm":
        return Sequential([Embedding(27, 10), FlattenConsecutive(3), Linear(30, 200, bias=False), LayerNorm1d(200),
                           Tanh(), Linear(200, 27)])
    if name == "batchnorm":
        return mlp(batchnorm=True)
    if name == "sync-batchnorm":
        return distributed.sync_batchnorm(mlp(batchnorm=True))
    raise ValueError(f"names_model expected one of {', '.join(NAMES_MODELS)}, got {name!r}")


def train_names(name: str, steps: int, batch_size: int, out_dir: str, halves: bool = False,
                nudge: bool = False) -> None:
    """Train names_model(name) with SGD; every rank writes rank{r}.pt: weights, losses, val loss, and the
    weights after each of SNAPSHOT_STEPS (and the last step), flattened into one vector each.

    The loop of lecture 08: every rank draws the same global batch from the same seeded generator and
    keeps its slice; after backward the gradients are averaged over the ranks; then each rank takes the
    same step. With one process the slice is the whole batch and the average does nothing.
    Two controls for one process: halves=True computes the gradient as the mean of the two half-batches'
    gradients (what 2 processes compute, without processes); nudge=True moves one initial weight by one
    float32 step (a rounding-sized change at step 0).
    """
    torch.set_num_threads(1)  # as each worker process runs: the same kernels, the same rounding
    data = names_dataset(3)
    X, Y = data["train"]
    model = names_model(name)
    if nudge:
        with torch.no_grad():
            w = model.parameters()[1]  # the first Linear's weight
            w[0, 0] = torch.nextafter(w[0, 0], torch.tensor(float("inf")))
    if distributed.world_size() > 1:
        distributed.broadcast_parameters(model)  # the copies start equal (here they already are: same seed)
    opt, schedule = SGD(model.parameters(), lr=0.1, momentum=0.9), StepDecay(steps)  # 0.1, then 0.01
    generator = torch.Generator().manual_seed(0)
    mine = distributed.shard(batch_size)
    keep = {s for s in SNAPSHOT_STEPS if s < steps} | {steps}
    losses, snapshots = [], {}
    for step in range(steps):
        ix = torch.randint(0, len(X), (batch_size,), generator=generator)[mine]  # (B / W,) this rank's rows
        opt.zero_grad()
        if halves:  # two half-batches' gradients, then their mean: the sum two processes' all-reduce makes
            grads, loss = [], 0.0
            for rows in (ix[:len(ix) // 2], ix[len(ix) // 2:]):
                half = cross_entropy(model(X[rows]), Y[rows])
                grads.append(torch.autograd.grad(half, model.parameters()))
                loss = loss + half.detach()
            for p, g0, g1 in zip(model.parameters(), *grads):
                p.grad = (g0 + g1) / 2
            loss = loss / 2
        else:
            loss = cross_entropy(model(X[ix]), Y[ix])
            loss.backward()
            distributed.all_reduce_gradients(model.parameters())  # the mean gradient over all B rows
        opt.lr = schedule(step)
        opt.step()
        losses.append(distributed.average(loss.detach()))  # the loss over the whole batch
        if step + 1 in keep:
            snapshots[step + 1] = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    model.eval()
    with torch.no_grad():
        val = cross_entropy(model(data["val"][0]), data["val"][1]).item()
    with staged(Path(out_dir) / f"rank{distributed.rank()}.pt") as tmp:  # the parent reads it whole or not at all
        torch.save({"state": model.state_dict(), "losses": torch.stack(losses), "val": val,
                    "snapshots": snapshots}, tmp)


class _OutOfTime(Exception):
    """Raised by measure_throughput's clock to end a single-process run that has used its time."""


def measure_throughput(steps: int, batch_per_process: int, device: str, out: str, threads: int = 1,
                       warmup: int = 5, max_seconds: float = 30.0) -> None:
    """Train the course's CPU GPT config with AdamW; rank 0 writes tokens per second and ms per step to out.

    Weak scaling: each process keeps its batch, so 2 processes carry twice the tokens per step. Each
    process computes with `threads` threads; `warmup` steps first, untimed. A single process stops
    after max_seconds of timed steps (the steps done count): on a machine whose cores are busy with other
    work, a process with 2 threads can take seconds per step, as each operation waits for both threads.
    """
    torch.set_num_threads(threads)
    dev = torch.device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", distributed.rank())
    data = shakespeare_dataset()
    torch.manual_seed(0)
    reg = RegisterModel(GPT(data.vocab_size, **GPT_CONFIG), "gpt", device=dev, verbose=False)
    batch = batch_per_process * distributed.world_size()
    train = dict(lr=1e-3, optimizer="adamw", clip=1.0, seed=0, eval_iters=1, progress=False, log=False,
                 batch_size=batch, block_size=GPT_CONFIG["block_size"])
    ticks: list[float] = []

    def clock(_step) -> None:  # after every step; only a single process may stop early (the ranks must agree)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        ticks.append(time.perf_counter())
        if distributed.world_size() == 1 and ticks[-1] - start > max_seconds:
            raise _OutOfTime

    start = time.perf_counter()
    try:
        reg.train_text(data, steps=warmup, on_step=clock, **train)
    except _OutOfTime:
        pass
    distributed.barrier()
    ticks.clear()
    start = time.perf_counter()
    try:
        reg.train_text(data, steps=steps, on_step=clock, **train)
    except _OutOfTime:
        pass
    seconds = ticks[-1] - start  # the training steps alone, not the loss estimate after them
    if distributed.is_main():
        tokens = len(ticks) * batch * GPT_CONFIG["block_size"]
        write_atomic(Path(out), json.dumps({"processes": distributed.world_size(), "threads": torch.get_num_threads(),
                                            "steps": len(ticks), "tokens_per_s": tokens / seconds,
                                            "ms_per_step": 1000 * seconds / len(ticks)}))


# the settings of the tokens-per-second table: (label, processes, threads per process)
THROUGHPUT_SETTINGS = (("1 process, 1 thread", 1, 1), ("1 process, 2 threads", 1, 2),
                       ("2 processes, 1 thread each", 2, 1))


def throughput_table(steps: int = 40, batch_per_process: int = 12, rounds: int = 3, device: str = "cpu",
                     warmup: int = 5) -> dict:
    """The tokens-per-second table of notebook 08, lecture 08 and benchmarks/ddp_scaling.py: one configuration.

    Every setting runs in freshly started processes (distributed.launch_local, gloo), `rounds` times, the
    settings taking turns so that a change in the machine's load falls on all of them; each setting
    reports the median of its rounds. Returns {label: {"tokens_per_s", "ms_per_step", "rounds": [...]}}.
    """
    settings = THROUGHPUT_SETTINGS if device == "cpu" else (("1 process", 1, 1), ("2 processes", 2, 1))
    measured: dict[str, list[dict]] = {label: [] for label, _, _ in settings}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):
            for label, nprocs, threads in settings:
                out = f"{tmp}/{round_}-{nprocs}-{threads}.json"
                distributed.launch_local(measure_throughput, nprocs, steps, batch_per_process, device, out, threads,
                                         warmup)
                measured[label].append(json.loads(Path(out).read_text()))
    return {label: {"tokens_per_s": statistics.median(r["tokens_per_s"] for r in runs),
                    "ms_per_step": statistics.median(r["ms_per_step"] for r in runs), "rounds": runs}
            for label, runs in measured.items()}


def format_throughput(table: dict, steps: int, batch_per_process: int = 12, device: str = "cpu",
                      warmup: int = 5) -> str:
    """The printout of throughput_table: one line per setting, the 2-process ratios, the machine's load."""
    rounds = len(next(iter(table.values()))["rounds"])
    lines = [f"GPT {GPT_CONFIG} ({GPT(65, **GPT_CONFIG).num_parameters():,} parameters), AdamW, batch "
             f"{batch_per_process} x {GPT_CONFIG['block_size']} tokens per process, {steps} steps after {warmup} of "
             f"warm-up, median of {rounds} rounds; device {device}, torch {torch.__version__}"]
    for label, r in table.items():
        each = ", ".join(f"{x['tokens_per_s']:,.0f}" + (f" ({x['steps']} steps: out of time)" if x["steps"] < steps
                                                         else "") for x in r["rounds"])
        lines.append(f"{label:28s} {r['tokens_per_s']:>8,.0f} tokens/s  {r['ms_per_step']:>6.1f} ms per step"
                     f"   (rounds: {each})")
    labels = list(table)
    two = table[labels[-1]]["tokens_per_s"]
    lines.append(f"2 processes: {two / table[labels[0]]['tokens_per_s']:.2f}x the tokens per second of 1 process"
                 + (f", {two / table[labels[1]]['tokens_per_s']:.2f}x that of 1 process with 2 threads"
                    if len(labels) == 3 else ""))
    if hasattr(os, "getloadavg"):
        lines.append(f"load average of the machine at the end: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    return "\n".join(lines)


class ThreadGroup:
    """world_size threads that stand in for processes, for checks that need no processes started.

    run(fn) calls fn(rank, all_reduce_sum) in one thread per rank and returns the results by rank;
    all_reduce_sum(t) leaves in t, in place, the sum of the tensors every rank handed in, as
    torch.distributed.all_reduce does between processes (every rank must call it). With
    torch_distributed=True, torch.distributed.all_reduce itself is that collective while the threads
    run, so that the framework's own code (SyncBatchNormFunction) runs in them unchanged.
    """

    def __init__(self, world_size: int, timeout: float = 20) -> None:
        self.world_size = world_size
        self.barrier = threading.Barrier(world_size, timeout=timeout)
        self.inputs: dict[int, torch.Tensor] = {}
        self.calls = [0] * world_size  # all_reduce_sum calls per rank
        self._local = threading.local()

    def all_reduce_sum(self, rank: int, t: torch.Tensor) -> None:
        self.inputs[rank] = t.detach().clone()
        self.calls[rank] += 1
        self.barrier.wait()  # every rank has handed in its tensor
        total = sum(self.inputs[r] for r in range(self.world_size))  # rank order, as one process would add
        self.barrier.wait()  # every rank has read them all
        with torch.no_grad():
            t.copy_(total)

    def _torch_all_reduce(self, t: torch.Tensor, op=None, group=None, async_op: bool = False):
        self.all_reduce_sum(self._local.rank, t)

    def run(self, fn, torch_distributed: bool = False) -> list:
        results, errors = [None] * self.world_size, []

        def one_rank(rank: int) -> None:
            self._local.rank = rank
            try:
                results[rank] = fn(rank, lambda t: self.all_reduce_sum(rank, t))
            except BaseException as err:  # handed to the caller below
                errors.append(err)
                self.barrier.abort()  # let the other ranks stop waiting

        with mock.patch.object(dist, "all_reduce", self._torch_all_reduce) if torch_distributed else nullcontext():
            threads = [threading.Thread(target=one_rank, args=(rank,)) for rank in range(self.world_size)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        if errors:
            raise next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0])
        return results


def sync_batchnorm_in_threads(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, dout: torch.Tensor,
                              sizes: list[int], eps: float = 1e-5) -> list[tuple[torch.Tensor, ...]]:
    """The framework's SyncBatchNormFunction, forward and backward, on consecutive slices of x (N, C) of
    the given sizes, one thread per slice: returns (dx, dgamma, dbeta) of every rank (its rows' dx, its
    share of dgamma and dbeta)."""
    if sum(sizes) != len(x):
        raise ValueError(f"the slices' sizes {sizes} must add up to the batch's {len(x)} rows")
    starts = [sum(sizes[:r]) for r in range(len(sizes))]

    def one_rank(rank: int, _all_reduce_sum) -> tuple[torch.Tensor, ...]:
        rows = slice(starts[rank], starts[rank] + sizes[rank])
        xr, g, b = x[rows].clone().requires_grad_(), gamma.clone().requires_grad_(), beta.clone().requires_grad_()
        running_mean, running_var = torch.zeros_like(gamma), torch.ones_like(gamma)
        out = distributed.SyncBatchNormFunction.apply(xr, g, b, eps, running_mean, running_var, 0.1)
        out.backward(dout[rows])
        return xr.grad, g.grad, b.grad

    return ThreadGroup(len(sizes)).run(one_rank, torch_distributed=True)
