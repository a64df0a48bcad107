"""The hand-written backward passes, checked by torch.autograd.gradcheck in float64."""
import torch
from torch.autograd import gradcheck

from minitorchnn.nn.backprop import CrossEntropyFunction, batch_norm, layer_norm, update_running_stats


def f64(*shape):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def test_batchnorm_backward_gradcheck():
    # the statistics are computed from x inside the function, as BatchNorm1d does, so gradcheck's
    # finite differences move them too: the hand-written dx must account for that
    x, gamma, beta = f64(12, 5), f64(5), f64(5)

    def bn(x, gamma, beta):
        xc = (x - x.mean(0)).detach()
        return batch_norm(x, xc, (xc * xc).mean(0), gamma, beta, 1e-5)

    assert gradcheck(bn, (x, gamma, beta), eps=1e-6, atol=1e-6)


def test_layernorm_backward_gradcheck_on_3d_input():
    x, gamma, beta = f64(3, 4, 6), f64(6), f64(6)

    def ln(x, gamma, beta):
        xc = (x - x.mean(-1, keepdim=True)).detach()
        return layer_norm(x, xc, (xc * xc).mean(-1, keepdim=True), gamma, beta, 1e-5)

    assert gradcheck(ln, (x, gamma, beta), eps=1e-6, atol=1e-6)


def test_the_norms_match_autograd_through_the_statistics():
    # the same numbers as letting autograd differentiate mean, var and the normalisation op by op
    x, gamma, beta, dout = f64(10, 4), f64(4), f64(4), torch.randn(10, 4, dtype=torch.float64)
    for ours_fn, dim in [(batch_norm, 0), (layer_norm, -1)]:
        mean = x.mean(dim, keepdim=True)
        var = ((x - mean) ** 2).mean(dim, keepdim=True)
        reference = gamma * (x - mean) / torch.sqrt(var + 1e-5) + beta
        ours = ours_fn(x, (x - mean).detach(), var.detach(), gamma, beta, 1e-5)
        torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-12)
        expected = torch.autograd.grad(reference, (x, gamma, beta), dout)
        for got, want in zip(torch.autograd.grad(ours, (x, gamma, beta), dout), expected):
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_cross_entropy_backward_gradcheck():
    logits = f64(7, 11)
    targets = torch.randint(0, 11, (7,))
    assert gradcheck(lambda z: CrossEntropyFunction.apply(z, targets), (logits,), eps=1e-6, atol=1e-6)


def test_cross_entropy_backward_gradcheck_at_large_logits():
    logits = (torch.randn(5, 6, dtype=torch.float64) * 50).requires_grad_()
    targets = torch.randint(0, 6, (5,))
    assert gradcheck(lambda z: CrossEntropyFunction.apply(z, targets), (logits,), eps=1e-6, atol=1e-6)


def test_running_statistics_move_as_torchs():
    x = torch.randn(20, 4, dtype=torch.float64)
    mean, var = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    update_running_stats(mean, var, x.mean(0), x.var(0, unbiased=False), 20, 0.1)
    torch.testing.assert_close(mean, 0.1 * x.mean(0), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(var, 0.9 + 0.1 * x.var(0, unbiased=True), rtol=1e-12, atol=1e-12)
