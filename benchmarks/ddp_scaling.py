"""Throughput of data-parallel training with 1 and 2 processes (gloo on CPU, NCCL on CUDA).

Each process trains the course's CPU GPT config (n_layer 4, n_head 4, n_embd 128, block_size 64) with
AdamW on Shakespeare at a fixed batch per process (weak scaling: 2 processes see twice the tokens per
step). Prints tokens per second for each setting and the 2-process ratios.

    python -m benchmarks.ddp_scaling [--steps 40] [--batch-per-process 12] [--rounds 3] [--warmup 5]
                                     [--device cpu|cuda]

This is the table of notebook 08 and lecture 08, computed by the same function
(minitorchnn.parallel.workers.throughput_table) with the same defaults: on the CPU, 1 process with 1
thread, 1 process with 2 threads (the same cores used without data parallelism) and 2 processes with 1
thread each, every setting in freshly started processes, the settings taking turns for `rounds` rounds,
the median of the rounds reported (a single process stops after 30 s of timed steps,
and the printout says so). Under CUDA, 2 processes need 2 GPUs. The committed printout is
results/ddp_scaling.txt.
"""
from __future__ import annotations

import argparse

from minitorchnn.parallel.workers import format_throughput, throughput_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per run (after 5 of warm-up)")
    parser.add_argument("--batch-per-process", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3, help="each setting runs this many times, in turns")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before the timed ones")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    table = throughput_table(args.steps, args.batch_per_process, args.rounds, args.device, args.warmup)
    print(format_throughput(table, args.steps, args.batch_per_process, args.device, args.warmup))


if __name__ == "__main__":
    main()
