"""Time one AdamW training step of WaveGPT against the GPT it extends, at the course's CPU config.

Config: n_layer 4, n_head 4, n_embd 128, block_size 64, batch 12, vocab 65; WaveGPT with its defaults
(a depthwise causal convolution of width 4, dilation 1, before the feed-forward net of every block).
Both run in this process on the same batches, interleaved in rounds (the order alternates); the script
prints the median step times and the median per-round ratio WaveGPT / GPT (goal: at most 1.2x).

    python -m benchmarks.wavegpt_step [--steps 30] [--rounds 9] [--device cpu|cuda] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics

import torch

import minitorchnn as mtn
from benchmarks.timing import time_rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--device", default=str(mtn.default_device()))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = dict(block_size=64, n_embd=128, n_head=4, n_layer=4)

    torch.manual_seed(0)
    batches = [(torch.randint(0, 65, (12, 64), device=device), torch.randint(0, 65, (12, 64), device=device))
               for _ in range(args.steps)]
    models = {"GPT": mtn.GPT(65, **config).to(device), "WaveGPT": mtn.WaveGPT(65, **config).to(device)}

    def make_step(model):
        opt = mtn.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)

        def step(xb, yb):
            loss = mtn.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            mtn.clip_grad_norm(model.parameters(), 1.0)
            opt.step()
        return step

    steps = {name: make_step(model) for name, model in models.items()}

    times = time_rounds(steps, batches, args.rounds, device)
    ratios = [w / g for w, g in zip(times["WaveGPT"], times["GPT"])]
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, batch 12 x 64 tokens, "
          f"{args.rounds} rounds of {args.steps} steps")
    for name, t in times.items():
        print(f"{name:8s} {models[name].num_parameters():,} parameters, step {statistics.median(t) * 1e3:.1f} ms "
              f"(median of rounds)")
    print(f"ratio WaveGPT / GPT: {statistics.median(ratios):.3f}x "
          f"(range {min(ratios):.3f}-{max(ratios):.3f}; goal <= 1.2x)")


if __name__ == "__main__":
    main()
