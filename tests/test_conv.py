import pytest
import torch
import torch.nn.functional as F

from minitorchnn.conv import CausalConv1d, WaveNet, WaveNetLayer


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
