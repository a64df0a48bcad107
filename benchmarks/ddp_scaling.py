"""Throughput of data-parallel training with 1 and 2 processes (gloo on CPU, NCCL on CUDA).

Each process trains the course's CPU GPT config (n_layer 4, n_head 4, n_embd 128, block_size 64) with
AdamW on Shakespeare at a fixed batch per process (weak scaling: 2 processes see twice the tokens per
step). Prints tokens per second for each setting and the 2-process speedup.

    python -m benchmarks.ddp_scaling [--steps 40] [--batch-per-process 12] [--device cpu|cuda]

On CPU every process uses one thread; "1 process, all threads" shows what one process gets from the
same cores without data parallelism. Under CUDA, 2 processes need 2 GPUs.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from minitorchnn.parallel import distributed
from minitorchnn.parallel.workers import GPT_CONFIG, measure_throughput


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-per-process", type=int, default=12)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        threads = torch.get_num_threads()
        if args.device == "cpu":  # the baseline: one process using every core's thread
            out = f"{tmp}/all_threads.json"
            measure_throughput(args.steps, args.batch_per_process, args.device, out)
            results[f"1 process, {threads} threads"] = json.loads(Path(out).read_text())
        for nprocs in (1, 2):
            out = f"{tmp}/{nprocs}.json"
            distributed.launch_local(measure_throughput, nprocs, args.steps, args.batch_per_process, args.device, out)
            results[f"{nprocs} process{'es' if nprocs > 1 else ''}, 1 thread each"] = json.loads(Path(out).read_text())
    print(f"GPT {GPT_CONFIG}, AdamW, batch {args.batch_per_process} x 64 tokens per process, {args.steps} steps, "
          f"device {args.device}, torch {torch.__version__}")
    for name, r in results.items():
        print(f"{name:28s} {r['tokens_per_s']:>10,.0f} tokens/s  ({r['ms_per_step']:.1f} ms per step)")
    one, two = results["1 process, 1 thread each"], results["2 processes, 1 thread each"]
    print(f"2 processes vs 1: {two['tokens_per_s'] / one['tokens_per_s']:.2f}x the tokens per second")


if __name__ == "__main__":
    main()
