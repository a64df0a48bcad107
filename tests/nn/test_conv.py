import re

import pytest
import torch
import torch.nn.functional as F

from minitorchnn.nn.conv import CausalConv1d, DepthwiseCausalConv1d, WaveNet, WaveNetLayer


@pytest.mark.parametrize("kernel_size, dilation", [(2, 1), (2, 4), (3, 2)])
def test_causal_conv_equals_conv1d_with_left_padding(kernel_size, dilation):
    torch.manual_seed(0)
    conv = CausalConv1d(5, 7, kernel_size=kernel_size, dilation=dilation)
    with torch.no_grad():
        conv.bias.copy_(torch.randn(7))
    x = torch.randn(3, 11, 5, requires_grad=True)
    ours = conv(x)
    weight = conv.weight.permute(2, 1, 0)  # (k, C_in, C_out) -> torch's (C_out, C_in, k)
    padded = F.pad(x.transpose(1, 2), ((kernel_size - 1) * dilation, 0))  # pad the time axis on the left
    theirs = F.conv1d(padded, weight, conv.bias, dilation=dilation).transpose(1, 2)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    (g_o,) = torch.autograd.grad(ours.sum(), x)
    (g_t,) = torch.autograd.grad(theirs.sum(), x)
    torch.testing.assert_close(g_o, g_t, rtol=1e-5, atol=1e-6)


def test_causal_conv_is_causal_and_reaches_its_receptive_field():
    torch.manual_seed(0)
    conv = CausalConv1d(3, 3, kernel_size=2, dilation=4)
    x = torch.randn(1, 12, 3)
    changed = x.clone()
    changed[:, 6] += 1.0
    diff = (conv(changed) - conv(x)).abs().sum(-1)[0]
    assert torch.all(diff[:6] == 0)  # nothing before the change moves
    assert diff[6] > 0 and diff[10] > 0  # the change reaches t=6 and t=6+dilation
    assert torch.all(diff[[7, 8, 9, 11]] == 0)


def test_causal_conv_errors():
    with pytest.raises(ValueError, match=r"expected input \(B, T, 5\), got \(2, 4, 6\)"):
        CausalConv1d(5, 7)(torch.randn(2, 4, 6))


def test_wavenet_receptive_field_covers_block_size_and_stays_causal():
    torch.manual_seed(0)
    net = WaveNet(8, block_size=16)
    assert [layer.conv.dilation for layer in net.layers] == [1, 2, 4, 8] and net.receptive_field == 16
    x = torch.randn(2, 16, 8)
    base = net(x)
    assert base.shape == (2, 16, 8)
    for t in range(15):
        changed = x.clone()
        changed[:, t + 1:] = torch.randn(2, 15 - t, 8)
        torch.testing.assert_close(net(changed)[:, :t + 1], base[:, :t + 1], rtol=0, atol=1e-6)
    changed = x.clone()
    changed[:, 0] += 1.0
    assert (net(changed)[:, 15] - base[:, 15]).abs().max() > 0  # the last position sees the first


def test_wavenet_layer_gated_residual_and_skip():
    torch.manual_seed(0)
    layer = WaveNetLayer(4, dilation=2)
    x = torch.randn(1, 6, 4)
    filt, gate = layer.conv(x).chunk(2, dim=-1)
    z = torch.tanh(filt) * torch.sigmoid(gate)
    residual, skip = layer(x)
    torch.testing.assert_close(residual, x + layer.residual(z), rtol=0, atol=0)
    torch.testing.assert_close(skip, layer.skip(z), rtol=0, atol=0)


def torch_depthwise(x, conv):
    """The same depthwise causal convolution by torch: F.conv1d with groups=C on the left-padded input."""
    weight = conv.weight.t().unsqueeze(1)  # (k, C) -> torch's (C, 1, k): one kernel per channel
    padded = F.pad(x.transpose(1, 2), ((conv.kernel_size - 1) * conv.dilation, 0))  # (B, C, pad + T)
    return F.conv1d(padded, weight, conv.bias, dilation=conv.dilation, groups=conv.channels).transpose(1, 2)


@pytest.mark.parametrize("kernel_size, dilation, bias", [(1, 1, True), (2, 1, True), (4, 1, False), (3, 4, True),
                                                         (4, 8, False)])
def test_depthwise_conv_equals_grouped_conv1d_outputs_and_gradients(kernel_size, dilation, bias):
    torch.manual_seed(0)
    conv = DepthwiseCausalConv1d(6, kernel_size, dilation, bias=bias)
    if bias:
        with torch.no_grad():
            conv.bias.copy_(torch.randn(6))
    x = torch.randn(3, 13, 6, requires_grad=True)
    ours, theirs = conv(x), torch_depthwise(x, conv)
    assert ours.shape == (3, 13, 6)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    upstream = torch.randn_like(ours)  # a random upstream gradient checks every element's backward
    params = [x, conv.weight] + ([conv.bias] if bias else [])
    grads_ours = torch.autograd.grad(ours, params, upstream)
    grads_theirs = torch.autograd.grad(theirs, params, upstream)
    for name, g_o, g_t in zip(["input", "weight", "bias"], grads_ours, grads_theirs):
        torch.testing.assert_close(g_o, g_t, rtol=1e-5, atol=1e-5, msg=f"gradient of {name}")


def test_depthwise_conv_is_causal_at_every_position_and_keeps_channels_apart():
    torch.manual_seed(0)
    conv = DepthwiseCausalConv1d(4, kernel_size=3, dilation=2)
    x = torch.randn(2, 12, 4)
    base = conv(x)
    for t in range(11):
        changed = x.clone()
        changed[:, t + 1:] = torch.randn(2, 11 - t, 4)
        torch.testing.assert_close(conv(changed)[:, :t + 1], base[:, :t + 1], rtol=0, atol=0)
    changed = x.clone()
    changed[:, 3, 1] += 1.0  # one channel at one position: it moves that channel at t = 3, 5, 7 only
    moved = (conv(changed) - base).abs() > 0
    assert moved[:, :, [0, 2, 3]].sum() == 0
    assert moved[0, :, 1].nonzero().flatten().tolist() == [3, 5, 7]
    assert conv.receptive_field == 5


@pytest.mark.parametrize("kwargs, message", [
    (dict(channels=4, kernel_size=0), "DepthwiseCausalConv1d: kernel_size must be an integer >= 1, got 0"),
    (dict(channels=4, dilation=0), "DepthwiseCausalConv1d: dilation must be an integer >= 1, got 0"),
    (dict(channels=4, dilation=1.5), "DepthwiseCausalConv1d: dilation must be an integer >= 1, got 1.5"),
    (dict(channels=0), "DepthwiseCausalConv1d: channels must be an integer >= 1, got 0"),
])
def test_depthwise_conv_refuses_bad_sizes(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        DepthwiseCausalConv1d(**kwargs)


def test_depthwise_conv_refuses_input_whose_channels_do_not_match():
    conv = DepthwiseCausalConv1d(8, kernel_size=4, dilation=2)
    with pytest.raises(ValueError, match=re.escape("DepthwiseCausalConv1d(8, kernel_size=4, dilation=2) expected "
                                                   "input (B, T, 8), got (2, 5, 7)")):
        conv(torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match=re.escape("expected input (B, T, 8), got (5, 8)")):
        conv(torch.randn(5, 8))
