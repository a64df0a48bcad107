"""Time one training step of the lecture's WaveNet (76,579 parameters): minitorchnn vs plain torch.

Both run in this process on the same batches, interleaved in rounds so that machine noise hits both
alike; the script prints the median step time of each and the median per-round ratio (goal: at most 1.10x).

    python -m benchmarks.overhead [--steps 200] [--rounds 15] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn as nn
import torch.nn.functional as F

import minitorchnn as mtn
from benchmarks.timing import gpu_kernels_per_step, ops_per_step, time_rounds


class TorchWaveNet(nn.Module):
    """The same network in plain torch.nn: BatchNorm runs on (B*T, C) so it normalises over batch and time."""

    def __init__(self, vocab_size=27, n_embd=24, n_hidden=128, levels=3):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, n_embd)
        widths = [n_embd] + [n_hidden] * levels
        self.linears = nn.ModuleList(nn.Linear(2 * w, n_hidden, bias=False) for w in widths[:-1])
        self.norms = nn.ModuleList(nn.BatchNorm1d(n_hidden) for _ in range(levels))
        self.head = nn.Linear(n_hidden, vocab_size)

    def forward(self, idx):
        x = self.embedding(idx)  # (B, T, C)
        for linear, norm in zip(self.linears, self.norms):
            B, T, C = x.shape
            x = linear(x.reshape(B, T // 2, 2 * C))  # (B, T/2, H)
            x = torch.tanh(norm(x.reshape(-1, x.shape[-1])).view_as(x))
        return self.head(x.squeeze(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default=str(mtn.default_device()))
    args = parser.parse_args()
    device = torch.device(args.device)

    torch.manual_seed(0)
    data = mtn.names_dataset(block_size=8)
    X, Y = (t.to(device) for t in data["train"])
    batches = [(ix,) for ix in torch.randint(0, len(X), (args.steps, args.batch_size), device=device)]

    ours = mtn.wavenet().to(device)
    ours_opt = mtn.SGD(ours.parameters(), lr=0.1)
    theirs = TorchWaveNet().to(device)
    theirs_opt = torch.optim.SGD(theirs.parameters(), lr=0.1)
    assert ours.num_parameters() == sum(p.numel() for p in theirs.parameters()) == 76_579

    def make_step(model, opt, loss_fn):
        def step(ix):
            loss = loss_fn(model(X[ix]), Y[ix])
            opt.zero_grad()
            loss.backward()
            opt.step()

        return step

    steps = {"minitorchnn": make_step(ours, ours_opt, mtn.cross_entropy),
             "plain torch": make_step(theirs, theirs_opt, F.cross_entropy)}
    times = time_rounds(steps, batches, args.rounds, device)
    ours_t, theirs_t = times["minitorchnn"], times["plain torch"]
    ratios = [o / t for o, t in zip(ours_t, theirs_t)]
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, "
          f"{args.rounds} rounds of {args.steps} steps")
    print(f"minitorchnn WaveNet step: {statistics.median(ours_t) * 1e3:.3f} ms (median of rounds)")
    print(f"plain torch WaveNet step: {statistics.median(theirs_t) * 1e3:.3f} ms (median of rounds)")
    print(f"ratio minitorchnn / torch: {statistics.median(ratios):.3f}x (median of per-round ratios; "
          f"range {min(ratios):.3f}-{max(ratios):.3f}; goal <= 1.10x)")
    ops = {name: ops_per_step(step, *batches[0]) for name, step in steps.items()}
    print("operations per step (top-level aten operators, torch.profiler): " +
          ", ".join(f"{name} {n}" for name, n in ops.items()))
    if device.type == "cuda":
        counts = {name: gpu_kernels_per_step(step, *batches[0]) for name, step in steps.items()}
        print("GPU kernels per step: " + ", ".join(f"{name} {n}" for name, n in counts.items()))


if __name__ == "__main__":
    main()
