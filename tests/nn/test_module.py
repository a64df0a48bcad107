import pytest
import torch

import minitorchnn as mtn
from minitorchnn.nn.module import Module


class Pair(Module):
    def __init__(self):
        self.first = mtn.Linear(3, 4)
        self.blocks = [mtn.BatchNorm1d(4), mtn.Tanh()]
        self.scale = torch.ones(4, requires_grad=True)

    def forward(self, x):
        x = self.first(x)
        for block in self.blocks:
            x = block(x)
        return x * self.scale


def test_finds_parameters_and_buffers_of_nested_layers_in_order():
    m = Pair()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "first.weight", "first.bias", "blocks.0.gamma", "blocks.0.beta"]
    assert [n for n, _ in m.named_buffers()] == ["blocks.0.running_mean", "blocks.0.running_var"]
    assert m.num_parameters() == 4 + 12 + 4 + 4 + 4
    assert all(p.requires_grad and p.is_leaf for p in m.parameters())


@pytest.mark.parametrize("make", [Pair, lambda: mtn.GPT(65, n_layer=2), lambda: mtn.WaveGPT(65, n_layer=2),
                                  lambda: mtn.swap(mtn.wavenet(), mtn.BatchNorm1d, mtn.to_torch)])
def test_parameters_are_the_tensors_of_named_parameters_in_the_same_order(make):
    # parameters() takes a shortcut (no names); it must still list exactly what named_parameters() does
    m = make()
    assert [id(p) for p in m.parameters()] == [id(p) for _, p in m.named_parameters()]


def test_sequential_state_dict_uses_the_same_names_as_torch():
    ours = mtn.Sequential([mtn.Linear(3, 4), mtn.BatchNorm1d(4)])
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    assert list(ours.state_dict()) == ["0.weight", "0.bias", "1.gamma", "1.beta", "1.running_mean", "1.running_var"]
    assert [k for k in theirs.state_dict() if k.startswith("0.")] == ["0.weight", "0.bias"]


def test_train_and_eval_reach_every_sub_layer():
    m = Pair()
    m.eval()
    assert not m.training and not m.first.training and not m.blocks[0].training
    m.train()
    assert all(layer.training for layer in m.modules())


def test_to_dtype_keeps_parameters_trainable_leaves_and_same_tensor_when_nothing_changes():
    m = Pair()
    before = m.first.weight
    m.to("cpu")
    assert m.first.weight is before  # an optimiser holding it must keep working
    m.double()
    assert m.first.weight.dtype == torch.float64 and m.first.weight.requires_grad and m.first.weight.is_leaf
    assert m.blocks[0].running_mean.dtype == torch.float64 and not m.blocks[0].running_mean.requires_grad


def test_state_dict_round_trip():
    a, b = Pair(), Pair()
    b.load_state_dict(a.state_dict())
    x = torch.randn(5, 3)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_load_state_dict_refuses_missing_unexpected_and_misshaped_entries_without_changing_anything():
    m = Pair()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    state = m.state_dict()
    with pytest.raises(KeyError, match=r"missing keys \['scale'\]"):
        m.load_state_dict({k: v for k, v in state.items() if k != "scale"})
    with pytest.raises(KeyError, match=r"unexpected keys \['extra'\]"):
        m.load_state_dict({**state, "extra": torch.zeros(1)})
    bad = {k: torch.zeros_like(v) for k, v in state.items()}
    bad["first.weight"] = torch.zeros(4, 3)
    with pytest.raises(ValueError, match=r"'first.weight' expected shape \(3, 4\), got \(4, 3\)"):
        m.load_state_dict(bad)
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_repr_is_readable_and_has_no_memory_address():
    text = repr(Pair())
    assert "0x" not in text
    assert "(first): Linear(in_features=3, out_features=4, bias=True)" in text
    assert "(blocks.0): BatchNorm1d(4, eps=1e-05, momentum=0.1)" in text
    assert repr(mtn.Sequential([mtn.Tanh()])) == "Sequential(\n  (0): Tanh()\n)"


def test_forward_must_be_defined():
    with pytest.raises(NotImplementedError, match="Module must define forward"):
        Module()(1)
