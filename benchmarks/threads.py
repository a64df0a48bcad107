"""Time one training step of each course model at 1 thread and at more: where do threads help?

Each model of the command line at its defaults (names models: batch 32 with SGD; gpt and wavegpt:
batch 12 x 64 tokens with AdamW) takes the same batches at each thread count, interleaved in rounds.
With --busy, a process spinning on one core runs beside it, as on a shared machine. The command line's
choice (minitorchnn.devices.threads_for) comes from these numbers.

    python -m benchmarks.threads [--models mlp gpt] [--threads 1 2] [--steps 20] [--rounds 5] [--busy]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

import torch

import minitorchnn as mtn
from benchmarks.timing import time_rounds
from minitorchnn.models import MODELS


def make_step(name: str, threads: int):
    """A training step of MODELS[name] that runs on `threads` threads, and its batches."""
    spec = MODELS[name]
    text = spec.data == "text"
    vocab, batch = (65, 12) if text else (27, 32)
    torch.manual_seed(0)
    model = spec(vocab)
    opt = (mtn.AdamW if text else mtn.SGD)(model.parameters(), lr=1e-3)

    def step(xb, yb):
        torch.set_num_threads(threads)
        loss = mtn.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x_shape, y_shape = ((batch, spec.block_size), (batch, spec.block_size) if text else (batch,))
    return step, (torch.randint(0, vocab, x_shape), torch.randint(0, vocab, y_shape))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["mlp", "mlp-bn", "wavenet", "gpt"], choices=list(MODELS))
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--busy", action="store_true", help="keep one core busy with a spinning process")
    args = parser.parse_args()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    try:
        print(f"torch {torch.__version__}, {'one core busy' if busy else 'idle'}, "
              f"{args.rounds} rounds of {args.steps} steps")
        for name in args.models:
            made = {n: make_step(name, n) for n in args.threads}
            batches = [made[args.threads[0]][1]] * args.steps
            times = time_rounds({n: step for n, (step, _) in made.items()}, batches, args.rounds,
                                torch.device("cpu"))
            cells = [f"{n} thread{'s' * (n > 1)} {statistics.median(t) * 1e3:.2f} ms" for n, t in times.items()]
            params = MODELS[name](65 if MODELS[name].data == "text" else 27).num_parameters()
            print(f"{name:8s} {params:>9,} parameters: " + ", ".join(cells))
    finally:
        if busy is not None:
            busy.kill()


if __name__ == "__main__":
    main()
