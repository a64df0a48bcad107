"""The hand-written backward passes, checked by torch.autograd.gradcheck in float64."""
import pytest
import torch
from torch.autograd import gradcheck

from minitorchnn.nn.backprop import BatchNormFunction, CrossEntropyFunction, LayerNormFunction, centre


def f64(*shape):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def test_batchnorm_backward_gradcheck():
    x, gamma, beta = f64(12, 5), f64(5), f64(5)

    def bn(x, gamma, beta):
        # fresh running buffers each call: forward also updates them
        return BatchNormFunction.apply(x, gamma, beta, 1e-5, torch.zeros(5, dtype=torch.float64),
                                       torch.ones(5, dtype=torch.float64), 0.1)

    assert gradcheck(bn, (x, gamma, beta), eps=1e-6, atol=1e-6)


def test_layernorm_backward_gradcheck_on_3d_input():
    x, gamma, beta = f64(3, 4, 6), f64(6), f64(6)
    assert gradcheck(lambda x, g, b: LayerNormFunction.apply(x, g, b, 1e-5), (x, gamma, beta), eps=1e-6, atol=1e-6)


def test_cross_entropy_backward_gradcheck():
    logits = f64(7, 11)
    targets = torch.randint(0, 11, (7,))
    assert gradcheck(lambda z: CrossEntropyFunction.apply(z, targets), (logits,), eps=1e-6, atol=1e-6)


def test_cross_entropy_backward_gradcheck_at_large_logits():
    logits = (torch.randn(5, 6, dtype=torch.float64) * 50).requires_grad_()
    targets = torch.randint(0, 6, (5,))
    assert gradcheck(lambda z: CrossEntropyFunction.apply(z, targets), (logits,), eps=1e-6, atol=1e-6)


def test_batchnorm_forward_updates_running_statistics_as_torch():
    x = torch.randn(20, 4, dtype=torch.float64)
    mean, var = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    BatchNormFunction.apply(x, torch.ones(4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64), 1e-5,
                            mean, var, 0.1)
    torch.testing.assert_close(mean, 0.1 * x.mean(0), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(var, 0.9 + 0.1 * x.var(0, unbiased=True), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dim, keepdim", [(0, False), (-1, True)])
def test_centre_gives_the_same_numbers_in_one_kernel_as_in_four(dim, keepdim):
    # the GPU takes torch.var_mean, the CPU four passes: both must be the batch/layer norm statistics
    x = torch.randn(64, 3, 16, dtype=torch.float64) * 3 + 1
    four, one = centre(x, dim, keepdim, one_kernel=False), centre(x, dim, keepdim, one_kernel=True)
    expected_var, expected_mean = torch.var_mean(x, dim, keepdim=keepdim, correction=0)
    for got in (four, one):
        xc, mean, var = got
        torch.testing.assert_close(mean, expected_mean, rtol=0, atol=1e-12)
        torch.testing.assert_close(var, expected_var, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(xc, x - x.mean(dim, keepdim=True), rtol=0, atol=1e-12)
