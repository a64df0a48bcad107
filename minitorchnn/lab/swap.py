"""swap(): a copy of a model with every layer of one type replaced; TorchLayer: a torch.nn module as a layer."""
from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..nn.module import Module


def swap(model: Module, old_type: type, make_new: Callable[[Module], Module]) -> Module:
    """A deep copy of model in which every layer of old_type is replaced by make_new(that layer).

    make_new gets the old layer, so it can read its width (`lambda bn: LayerNorm1d(bn.num_features)`)
    or copy its weights. The model passed in is not changed.
    """
    if not (isinstance(old_type, type) and issubclass(old_type, Module)):
        raise TypeError(f"swap: old_type must be a minitorchnn layer class, got {old_type!r}")
    if isinstance(model, old_type):
        raise ValueError(f"swap replaces layers inside a model; the model itself is a {old_type.__name__}")
    new_model = copy.deepcopy(model)
    replaced = 0

    def replacement(layer: Module) -> Module:
        nonlocal replaced
        new = make_new(layer)
        if not isinstance(new, Module):
            raise TypeError(f"swap: make_new must return a minitorchnn Module (wrap torch.nn layers in "
                            f"TorchLayer), got {type(new).__name__} for {layer!r}")
        replaced += 1
        return new

    for module in list(new_model.modules()):
        for name, value in list(vars(module).items()):
            if isinstance(value, old_type):
                setattr(module, name, replacement(value))
            elif isinstance(value, (list, tuple)) and any(isinstance(v, old_type) for v in value):
                items = [replacement(v) if isinstance(v, old_type) else v for v in value]
                setattr(module, name, type(value)(items))
    if replaced == 0:
        raise ValueError(f"swap: the model has no {old_type.__name__} layer to replace")
    return new_model


class TorchLayer(Module):
    """A torch.nn module used as a minitorchnn layer, to check one of ours against torch's.

    Its parameters and buffers count as this layer's (for parameters(), state_dict, to, train/eval).
    channels_last=True feeds a 3-D (B, T, C) input to the module as (B, C, T), as torch.nn.BatchNorm1d wants.
    """

    def __init__(self, module: nn.Module, channels_last: bool = False) -> None:
        self.module, self.channels_last = module, channels_last

    @property
    def training(self) -> bool:
        return self.module.training

    @training.setter
    def training(self, mode: bool) -> None:
        self.module.train(mode)

    def _named_tensors(self, prefix: str = ""):
        yield from ((prefix + name, p) for name, p in self.module.named_parameters())
        yield from ((prefix + name, b) for name, b in self.module.named_buffers())

    def parameters(self) -> list[Tensor]:
        return [p for p in self.module.parameters() if p.requires_grad]

    def _move_own_tensors(self, device, dtype) -> None:
        self.module.to(device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        if self.channels_last and x.ndim == 3:
            return self.module(x.transpose(1, 2)).transpose(1, 2)  # (B, T, C) -> (B, C, T) and back
        return self.module(x)

    def extra_repr(self) -> str:
        return repr(self.module) + (", channels_last=True" if self.channels_last else "")


def to_torch(layer: Module) -> TorchLayer:
    """torch.nn's counterpart of a minitorchnn Linear, Embedding, BatchNorm1d, LayerNorm1d, Tanh or ReLU,
    with the same weights and running statistics, wrapped as a TorchLayer."""
    from ..nn import BatchNorm1d, BatchNorm1dPerPosition, Embedding, LayerNorm1d, Linear, ReLU, Tanh

    with torch.no_grad():
        if isinstance(layer, Linear):
            out = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
            out.weight.copy_(layer.weight.T)  # ours is (in, out) so that x @ W; torch keeps (out, in)
            if layer.bias is not None:
                out.bias.copy_(layer.bias)
            return TorchLayer(out)
        if isinstance(layer, Embedding):
            out = nn.Embedding(*layer.weight.shape)
            out.weight.copy_(layer.weight)
            return TorchLayer(out)
        if isinstance(layer, BatchNorm1d) and not isinstance(layer, BatchNorm1dPerPosition):
            out = nn.BatchNorm1d(layer.num_features, eps=layer.eps, momentum=layer.momentum)
            out.weight.copy_(layer.gamma)
            out.bias.copy_(layer.beta)
            out.running_mean.copy_(layer.running_mean)
            out.running_var.copy_(layer.running_var)
            return TorchLayer(out, channels_last=True)
        if isinstance(layer, LayerNorm1d):
            out = nn.LayerNorm(layer.gamma.shape[0], eps=layer.eps)
            out.weight.copy_(layer.gamma)
            out.bias.copy_(layer.beta)
            return TorchLayer(out)
    if isinstance(layer, Tanh):
        return TorchLayer(nn.Tanh())
    if isinstance(layer, ReLU):
        return TorchLayer(nn.ReLU())
    raise TypeError(f"to_torch: no torch.nn counterpart known for {layer!r}")
