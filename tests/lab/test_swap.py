import pytest
import torch
from torch import nn

import minitorchnn as mtn


def test_batchnorm_swapped_for_layernorm_keeps_the_parameter_count_and_leaves_the_original():
    torch.manual_seed(0)
    model = mtn.wavenet()
    swapped = mtn.swap(model, mtn.BatchNorm1d, lambda bn: mtn.LayerNorm1d(bn.num_features))
    assert swapped.num_parameters() == model.num_parameters() == 76_579
    assert sum(isinstance(m, mtn.LayerNorm1d) for m in swapped.modules()) == 3
    assert not any(isinstance(m, mtn.BatchNorm1d) for m in swapped.modules())
    assert sum(isinstance(m, mtn.BatchNorm1d) for m in model.modules()) == 3  # the original is untouched
    # a copy: the other layers hold equal values in new tensors
    assert torch.equal(swapped[0].weight, model[0].weight) and swapped[0].weight is not model[0].weight
    assert swapped(torch.randint(0, 27, (4, 8))).shape == (4, 27)


def test_swap_reaches_layers_inside_attributes_and_lists():
    torch.manual_seed(0)
    model = mtn.GPT(65, block_size=8, n_embd=16, n_head=2, n_layer=2)
    swapped = mtn.swap(model, mtn.LayerNorm1d, lambda ln: mtn.to_torch(ln))
    assert sum(isinstance(m, mtn.TorchLayer) for m in swapped.modules()) == 5  # 2 per block + the final one
    idx = torch.randint(0, 65, (2, 8))
    torch.testing.assert_close(swapped(idx), model(idx), atol=1e-5, rtol=1e-5)


def test_torch_counterparts_agree_with_ours_in_outputs_gradients_and_running_stats():
    torch.manual_seed(0)
    ours = mtn.wavenet()
    theirs = mtn.swap(ours, mtn.BatchNorm1d, mtn.to_torch)
    theirs = mtn.swap(theirs, mtn.Linear, mtn.to_torch)
    assert theirs.num_parameters() == ours.num_parameters()
    x, y = torch.randint(0, 27, (32, 8)), torch.randint(0, 27, (32,))
    loss_ours, loss_theirs = mtn.cross_entropy(ours(x), y), mtn.cross_entropy(theirs(x), y)
    torch.testing.assert_close(loss_theirs, loss_ours, atol=1e-5, rtol=1e-5)
    loss_ours.backward()
    loss_theirs.backward()
    torch.testing.assert_close(theirs[0].weight.grad, ours[0].weight.grad, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(theirs[2].module.weight.grad, ours[2].weight.grad.T, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(theirs[3].module.running_var, ours[3].running_var, atol=1e-6, rtol=1e-5)
    ours.eval()
    theirs.eval()
    assert not theirs[3].module.training  # eval() reaches the torch module
    torch.testing.assert_close(theirs(x), ours(x), atol=1e-5, rtol=1e-5)


def test_torch_layer_state_dict_and_dtype():
    layer = mtn.TorchLayer(nn.LayerNorm(4))
    assert set(layer.state_dict()) == {"weight", "bias"} and layer.num_parameters() == 8
    layer.double()
    assert layer.module.weight.dtype == torch.float64
    assert repr(layer) == f"TorchLayer({layer.module!r})" and "0x" not in repr(layer)


def test_swap_errors_name_the_problem():
    model = mtn.mlp()
    with pytest.raises(ValueError, match="the model has no BatchNorm1d layer to replace"):
        mtn.swap(model, mtn.BatchNorm1d, lambda bn: mtn.LayerNorm1d(bn.num_features))
    with pytest.raises(TypeError, match="make_new must return a minitorchnn Module .*TorchLayer.*got Tanh"):
        mtn.swap(model, mtn.Tanh, lambda t: nn.Tanh())
    with pytest.raises(TypeError, match="old_type must be a minitorchnn layer class"):
        mtn.swap(model, nn.Linear, lambda t: t)
    with pytest.raises(TypeError, match="no torch.nn counterpart known for FlattenConsecutive"):
        mtn.to_torch(model[1])
    with pytest.raises(TypeError, match=r"no torch.nn counterpart known for BatchNorm1dPerPosition\(4, positions=2"):
        mtn.to_torch(mtn.BatchNorm1dPerPosition(4, 2))
