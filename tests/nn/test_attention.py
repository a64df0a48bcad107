import pytest
import torch
import torch.nn.functional as F

from minitorchnn.nn.attention import Block, Dropout, FeedForward, MultiHeadAttention


def test_attention_equals_scaled_dot_product_attention_on_the_same_qkv():
    torch.manual_seed(0)
    attn = MultiHeadAttention(n_embd=32, n_head=4, block_size=16)
    x = torch.randn(3, 10, 32)
    q, k, v = attn.qkv(x).split(32, dim=2)
    q, k, v = (t.view(3, 10, 4, 8).transpose(1, 2) for t in (q, k, v))
    reference = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # scales by 1/sqrt(head_size)
    reference = attn.proj(reference.transpose(1, 2).reshape(3, 10, 32))
    torch.testing.assert_close(attn(x), reference, rtol=1e-5, atol=1e-6)


def test_attention_is_causal():
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 2, block_size=12)
    x = torch.randn(2, 12, 16)
    for t in range(11):
        changed = x.clone()
        changed[:, t + 1:] = torch.randn(2, 11 - t, 16)  # perturb everything after t
        torch.testing.assert_close(attn(changed)[:, :t + 1], attn(x)[:, :t + 1], rtol=0, atol=1e-6)


def test_attention_errors():
    with pytest.raises(ValueError, match="n_embd=30 is not divisible by n_head=4"):
        MultiHeadAttention(30, 4, 8)
    attn = MultiHeadAttention(16, 2, block_size=8)
    with pytest.raises(ValueError, match="got a sequence of 9 tokens, longer than block_size=8"):
        attn(torch.randn(1, 9, 16))
    with pytest.raises(ValueError, match="expected last dim 16, got 12"):
        attn(torch.randn(1, 4, 12))


def test_dropout_train_and_eval():
    torch.manual_seed(0)
    drop = Dropout(0.25)
    x = torch.ones(200_000)
    y = drop(x)
    zero_fraction = (y == 0).float().mean().item()
    assert abs(zero_fraction - 0.25) < 0.01
    assert torch.allclose(y[y != 0], torch.tensor(1 / 0.75))  # kept entries rescaled: mean stays 1
    drop.eval()
    assert torch.equal(drop(x), x)
    with pytest.raises(ValueError, match=r"Dropout: p must be a number in \[0, 1\), got 1.0"):
        Dropout(1.0)


def test_block_is_pre_layernorm_residual():
    torch.manual_seed(0)
    block = Block(16, 4, block_size=8)
    x = torch.randn(2, 8, 16)
    h = x + block.attn(block.ln1(x))
    torch.testing.assert_close(block(x), h + block.ffwd(block.ln2(h)), rtol=0, atol=0)
    assert FeedForward(16).fc.out_features == 64


def test_attention_backward_matches_torch_gradients():
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 4, block_size=8)
    x = torch.randn(2, 8, 16, requires_grad=True)
    (g_ours,) = torch.autograd.grad(attn(x).square().sum(), x)
    q, k, v = attn.qkv(x).split(16, dim=2)
    q, k, v = (t.view(2, 8, 4, 4).transpose(1, 2) for t in (q, k, v))
    ref = attn.proj(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(2, 8, 16))
    (g_ref,) = torch.autograd.grad(ref.square().sum(), x)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-4, atol=1e-5)
