"""What notebook 08 and benchmarks/ddp_scaling.py run in their worker processes.

A process started by `distributed.launch_local` imports the function it runs: a function defined in a
notebook lives only in that notebook's kernel, so the workers live here.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

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


def train_names(name: str, steps: int, batch_size: int, out_dir: str) -> None:
    """Train names_model(name) with SGD; every rank writes rank{r}.pt: weights, losses, val loss.

    The loop of lecture 08: every rank draws the same global batch from the same seeded generator and
    keeps its slice; after backward the gradients are averaged over the ranks; then each rank takes the
    same step. With one process the slice is the whole batch and the average does nothing.
    """
    torch.set_num_threads(1)  # as each worker process runs: the same kernels, the same rounding
    data = names_dataset(3)
    X, Y = data["train"]
    model = names_model(name)
    if distributed.world_size() > 1:
        distributed.broadcast_parameters(model)  # the copies start equal (here they already are: same seed)
    opt, schedule = SGD(model.parameters(), lr=0.1, momentum=0.9), StepDecay(steps)  # 0.1, then 0.01
    generator = torch.Generator().manual_seed(0)
    mine = distributed.shard(batch_size)
    losses = []
    for step in range(steps):
        ix = torch.randint(0, len(X), (batch_size,), generator=generator)[mine]  # (B / W,) this rank's rows
        loss = cross_entropy(model(X[ix]), Y[ix])
        opt.zero_grad()
        loss.backward()
        distributed.all_reduce_gradients(model.parameters())  # the mean gradient over all B rows
        opt.lr = schedule(step)
        opt.step()
        losses.append(distributed.average(loss.detach()))  # the loss over the whole batch
    model.eval()
    with torch.no_grad():
        val = cross_entropy(model(data["val"][0]), data["val"][1]).item()
    with staged(Path(out_dir) / f"rank{distributed.rank()}.pt") as tmp:  # the parent reads it whole or not at all
        torch.save({"state": model.state_dict(), "losses": torch.stack(losses), "val": val}, tmp)


def measure_throughput(steps: int, batch_per_process: int, device: str, out: str) -> None:
    """Train the course's CPU GPT config with AdamW; rank 0 writes tokens per second and ms per step to out.

    Weak scaling: each process keeps its batch, so 2 processes carry twice the tokens per step.
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", distributed.rank())
    data = shakespeare_dataset()
    torch.manual_seed(0)
    reg = RegisterModel(GPT(data.vocab_size, **GPT_CONFIG), "gpt", device=dev, verbose=False)
    batch = batch_per_process * distributed.world_size()
    train = dict(lr=1e-3, optimizer="adamw", clip=1.0, seed=0, eval_iters=1, progress=False, log=False)
    reg.train_text(data, steps=5, batch_size=batch, block_size=GPT_CONFIG["block_size"], **train)  # warm up
    distributed.barrier()
    start = time.perf_counter()
    reg.train_text(data, steps=steps, batch_size=batch, block_size=GPT_CONFIG["block_size"], **train)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if distributed.is_main():
        tokens = steps * batch * GPT_CONFIG["block_size"]
        write_atomic(Path(out), json.dumps({"processes": distributed.world_size(), "threads": torch.get_num_threads(),
                                            "tokens_per_s": tokens / seconds, "ms_per_step": 1000 * seconds / steps}))
