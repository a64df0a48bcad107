"""Time one AdamW training step of the course's CPU GPT config: minitorchnn vs plain torch.

Config: n_layer 4, n_head 4, n_embd 128, block_size 64, batch 12, vocab 65 (about 0.8M parameters).
The plain-torch model is written the way nanoGPT writes it (torch.nn modules, fused
F.scaled_dot_product_attention, torch.optim.AdamW). Both run in this process on the same batches,
interleaved in rounds; the script prints the median step times and the median per-round ratio
(goal: at most 1.15x).

    python -m benchmarks.gpt_step [--steps 30] [--rounds 9] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn as nn
import torch.nn.functional as F

import minitorchnn as mtn
from benchmarks.timing import gpu_kernels_per_step, ops_per_step, time_rounds


class TorchBlock(nn.Module):
    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.ln1, self.ln2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.qkv, self.proj = nn.Linear(n_embd, 3 * n_embd), nn.Linear(n_embd, n_embd)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.ReLU(), nn.Linear(4 * n_embd, n_embd))

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + self.proj(y)
        return x + self.mlp(self.ln2(x))


class TorchGPT(nn.Module):
    def __init__(self, vocab_size: int, block_size: int, n_embd: int, n_head: int, n_layer: int) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab_size, n_embd), nn.Embedding(block_size, n_embd)
        self.blocks = nn.Sequential(*[TorchBlock(n_embd, n_head) for _ in range(n_layer)])
        self.ln_f, self.head = nn.LayerNorm(n_embd), nn.Linear(n_embd, vocab_size)

    def forward(self, idx):
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        return self.head(self.ln_f(self.blocks(x)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--device", default=str(mtn.default_device()))
    args = parser.parse_args()
    device = torch.device(args.device)
    config = dict(vocab_size=65, block_size=64, n_embd=128, n_head=4, n_layer=4)

    torch.manual_seed(0)
    batches = [(torch.randint(0, 65, (12, 64), device=device), torch.randint(0, 65, (12, 64), device=device))
               for _ in range(args.steps)]
    ours = mtn.GPT(**config).to(device)
    theirs = TorchGPT(**config).to(device)
    assert ours.num_parameters() == sum(p.numel() for p in theirs.parameters())
    ours_opt = mtn.AdamW(ours.parameters(), lr=1e-3, weight_decay=0.0)
    theirs_opt = torch.optim.AdamW(theirs.parameters(), lr=1e-3, weight_decay=0.0)

    def make_step(model, opt, loss_fn, clip):
        def step(xb, yb):
            loss = loss_fn(model(xb).view(-1, 65), yb.view(-1))
            opt.zero_grad()
            loss.backward()
            clip(model.parameters(), 1.0)
            opt.step()
        return step

    steps = {
        "minitorchnn": make_step(ours, ours_opt, mtn.cross_entropy, mtn.clip_grad_norm),
        "plain torch": make_step(theirs, theirs_opt, F.cross_entropy, nn.utils.clip_grad_norm_),
    }

    times = time_rounds(steps, batches, args.rounds, device)
    ratios = [o / t for o, t in zip(times["minitorchnn"], times["plain torch"])]
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{ours.num_parameters():,} parameters, batch 12 x 64 tokens, {args.rounds} rounds of {args.steps} steps")
    for name, t in times.items():
        print(f"{name:12s} GPT step: {statistics.median(t) * 1e3:.1f} ms (median of rounds)")
    print(f"ratio minitorchnn / torch: {statistics.median(ratios):.3f}x "
          f"(range {min(ratios):.3f}-{max(ratios):.3f}; goal <= 1.15x)")
    ops = {name: ops_per_step(step, *batches[0]) for name, step in steps.items()}
    print("operations per step (top-level aten operators, torch.profiler): " +
          ", ".join(f"{name} {n}" for name, n in ops.items()))
    if device.type == "cuda":
        counts = {name: gpu_kernels_per_step(step, *batches[0]) for name, step in steps.items()}
        print("GPU kernels per step: " + ", ".join(f"{name} {n}" for name, n in counts.items()))


if __name__ == "__main__":
    main()
