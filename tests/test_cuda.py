"""The CUDA lane: what must also hold on a GPU. Marked `cuda`; skipped, with the reason, where there is none.

Run only this lane with `python -m pytest -m cuda`. Every check is written for any device and the lane runs
it on "cuda"; the same checks run on the CPU elsewhere in tests/.
"""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import minitorchnn as mtn
from minitorchnn.parallel import distributed

ROOT = Path(__file__).resolve().parents[1]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; this machine has none")
pytestmark = [pytest.mark.cuda, needs_cuda]


def layers_match_torch(device: str) -> None:
    """Linear, LayerNorm1d, BatchNorm1d, GELU, MultiHeadAttention and DepthwiseCausalConv1d against torch on device."""
    torch.manual_seed(0)
    x = torch.randn(4, 16, 8, device=device)
    linear = mtn.Linear(8, 5).to(device)
    torch.testing.assert_close(linear(x), F.linear(x, linear.weight.t(), linear.bias), rtol=1e-4, atol=1e-5)
    ln = mtn.LayerNorm1d(8).to(device)
    torch.testing.assert_close(ln(x), F.layer_norm(x, (8,)), rtol=1e-4, atol=1e-5)
    bn, theirs = mtn.BatchNorm1d(8).to(device), nn.BatchNorm1d(8).to(device)
    torch.testing.assert_close(bn(x), theirs(x.transpose(1, 2)).transpose(1, 2), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(mtn.GELU()(x), F.gelu(x), rtol=1e-4, atol=1e-5)
    attn = mtn.MultiHeadAttention(8, n_head=2, block_size=16).to(device)
    q, k, v = (t.view(4, 16, 2, 4).transpose(1, 2) for t in attn.qkv(x).split(8, dim=2))
    fused = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(4, 16, 8)
    torch.testing.assert_close(attn(x), attn.proj(fused), rtol=1e-4, atol=1e-5)
    conv = mtn.DepthwiseCausalConv1d(8, kernel_size=3, dilation=2).to(device)
    padded = F.pad(x.transpose(1, 2), (4, 0))
    expected = F.conv1d(padded, conv.weight.t().unsqueeze(1), conv.bias, dilation=2, groups=8).transpose(1, 2)
    torch.testing.assert_close(conv(x), expected, rtol=1e-4, atol=1e-5)


def trains_and_samples(device: str) -> None:
    """A small GPT trains on the device (the loss falls), stays there, and samples with a seed made there."""
    torch.manual_seed(0)
    reg = mtn.RegisterModel(mtn.WaveGPT(65, block_size=32, n_embd=64, n_head=4, n_layer=2), "gpt", "v1",
                            device=device, verbose=False)
    run = reg.train_text(mtn.shakespeare_dataset(), steps=150, batch_size=16, lr=3e-3, seed=0, eval_iters=5,
                         log=False, progress=False)
    assert all(p.device.type == torch.device(device).type for p in reg.model.parameters())
    first, last = sum(run["loss"][:10]) / 10, sum(run["loss"][-10:]) / 10
    assert last < first - 0.5, f"the loss should fall on {device}: {first:.3f} -> {last:.3f}"
    context = torch.zeros(1, 1, dtype=torch.long)  # on the CPU: generate moves it to the model's device
    out = reg.model.generate(context, 20, top_k=10, seed=0)
    assert out.shape == (1, 21) and torch.equal(out, reg.model.generate(context, 20, top_k=10, seed=0))


def test_layers_match_torch_on_cuda():
    layers_match_torch("cuda")


def test_a_training_run_and_sampling_on_cuda():
    trains_and_samples("cuda")


@pytest.mark.parametrize("script", ["gpt_step", "wavegpt_step", "overhead"])
def test_the_step_benchmarks_run_on_cuda(script):
    out = subprocess.run([sys.executable, "-m", f"benchmarks.{script}", "--device", "cuda", "--steps", "5",
                          "--rounds", "1"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "device cuda" in out.stdout and "ratio" in out.stdout


def nccl_worker(out_dir: str) -> None:
    torch.manual_seed(0)
    model = mtn.GPT(65, block_size=16, n_embd=32, n_head=2, n_layer=1)
    reg = mtn.RegisterModel(model, "gpt", "v1", verbose=False)  # distributed.init gave this rank its GPU
    reg.train_text(mtn.shakespeare_dataset(), steps=10, batch_size=8, block_size=16, lr=1e-3, seed=0, eval_iters=1,
                   log=False, progress=False)
    torch.save({k: v.cpu() for k, v in reg.model.state_dict().items()}, f"{out_dir}/rank{distributed.rank()}.pt")


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL data parallelism needs 2 CUDA GPUs, one per process")
def test_two_nccl_processes_end_with_the_same_weights(tmp_path):
    distributed.launch_local(nccl_worker, 2, str(tmp_path), backend="nccl")
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    for name, weight in ranks[0].items():
        torch.testing.assert_close(weight, ranks[1][name], rtol=0, atol=0, msg=name)
