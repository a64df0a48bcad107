import pytest
import torch
import torch.nn.functional as F

import minitorchnn as mtn


@pytest.mark.parametrize("shape", [(32, 27), (4, 8, 65)])
def test_cross_entropy_matches_torch_value_and_gradient(shape):
    logits = (torch.randn(*shape) * 3).requires_grad_()
    targets = torch.randint(0, shape[-1], shape[:-1])
    ours = mtn.cross_entropy(logits, targets)
    theirs = F.cross_entropy(logits.reshape(-1, shape[-1]), targets.reshape(-1))
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    (g_o,) = torch.autograd.grad(ours, logits)
    (g_t,) = torch.autograd.grad(theirs, logits)
    torch.testing.assert_close(g_o, g_t, rtol=0, atol=1e-7)


@pytest.mark.parametrize("scale", [100.0, 1000.0, -1000.0])
def test_cross_entropy_stays_finite_at_huge_logits(scale):
    logits = (torch.randn(16, 27) * scale).requires_grad_()
    targets = torch.randint(0, 27, (16,))
    ours = mtn.cross_entropy(logits, targets)
    assert torch.isfinite(ours)
    torch.testing.assert_close(ours, F.cross_entropy(logits, targets), rtol=1e-6, atol=1e-4)
    ours.backward()
    assert torch.isfinite(logits.grad).all()


def test_the_seed_notebooks_softmax_overflows_where_ours_does_not():
    logits = torch.full((2, 27), 100.0)
    logits[:, 0] = 101.0
    targets = torch.tensor([0, 1])
    probs = logits.exp() / logits.exp().sum(1, keepdim=True)  # a naive Softmax: exp(100) = inf in float32
    seed_loss = -probs[torch.arange(2), targets].log().mean()
    assert not torch.isfinite(seed_loss)
    torch.testing.assert_close(mtn.cross_entropy(logits, targets), F.cross_entropy(logits, targets), rtol=0, atol=1e-6)


def test_cross_entropy_errors():
    logits = torch.randn(4, 27)
    with pytest.raises(ValueError, match=r"expected targets of shape \(4,\) for logits \(4, 27\), got \(4, 1\)"):
        mtn.cross_entropy(logits, torch.zeros(4, 1, dtype=torch.long))
    with pytest.raises(TypeError, match="expected int64 \\(long\\) targets, got torch.float32"):
        mtn.cross_entropy(logits, torch.zeros(4))
    with pytest.raises(IndexError, match=r"got a target of 27, expected classes in \[0, 27\)"):
        mtn.cross_entropy(logits, torch.tensor([0, 1, 27, 2]))
    with pytest.raises(IndexError, match=r"got a target of -3, expected classes in \[0, 27\)"):
        mtn.cross_entropy(logits, torch.tensor([0, -3, 1, 2]))
    with pytest.raises(ValueError, match=r"expected logits of shape \(N, V\) or \(B, T, V\), got \(27,\)"):
        mtn.cross_entropy(torch.randn(27), torch.tensor(1))
