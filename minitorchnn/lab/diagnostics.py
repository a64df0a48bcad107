"""The lectures' health checks of a network, as functions: activations, gradients, update-to-data ratios.

    stats = mtn.activation_stats(model, xb)          # per Tanh layer: mean, std, % saturated
    mtn.plot_activations(model, xb)                  # their histograms
    mtn.plot_gradients(model, xb, yb)                # histograms of the weights' gradients
    tracker = mtn.UpdateRatioTracker(model)          # pass as reg.train(..., on_step=tracker)
    tracker.plot()                                   # log10(update std / data std) over training
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import Tensor

from ..nn.layers import Tanh
from ..nn.loss import cross_entropy
from ..nn.module import Module

SATURATED = 0.97  # |tanh| above this: the gradient (1 - t^2) is below 6% of its full size


@contextmanager
def _recording(model: Module, layer_type: type):
    """Keep the output of every layer of layer_type during one forward pass: [(name, output)]."""
    found = [(name or type(m).__name__, m) for name, m in model.named_modules() if isinstance(m, layer_type)]
    if not found:
        raise ValueError(f"the model has no {layer_type.__name__} layer to look at")
    outputs: list[tuple[str, Tensor]] = []
    for name, layer in found:
        def forward(x, layer=layer, name=name):
            out = type(layer).forward(layer, x)
            outputs.append((name, out))
            return out
        layer.forward = forward  # an instance attribute hides the class's forward for this pass only
    try:
        yield outputs
    finally:
        for _, layer in found:
            del layer.forward


def _saturated_percent(t: Tensor) -> float:
    return 100 * (t.abs() > SATURATED).float().mean().item()


def _weight_grads(model: Module, x: Tensor, y: Tensor) -> list[tuple[str, Tensor, Tensor]]:
    """(name, weight, gradient) of every weight matrix after one backward pass on (x, y); the model's
    own .grad fields are left as they were."""
    weights = [(name, p) for name, p in model.named_parameters() if p.ndim == 2]
    grads = torch.autograd.grad(cross_entropy(model(x), y), [p for _, p in weights])
    return [(name, p, g) for (name, p), g in zip(weights, grads)]


def activation_stats(model: Module, x: Tensor, layer_type: type = Tanh, keep_grad: bool = False) -> list[dict]:
    """For each layer of layer_type (Tanh by default) after one forward pass on x: its output's mean,
    std and the percentage of saturated outputs (|t| > 0.97). Runs in the model's current mode."""
    with _recording(model, layer_type) as outputs, torch.set_grad_enabled(keep_grad):
        model(x)
    rows = []
    for name, out in outputs:
        t = out.detach()
        rows.append({"layer": f"{name} ({layer_type.__name__})", "mean": t.mean().item(),
                     "std": t.std().item(), "saturated %": _saturated_percent(t)})
    return rows


def plot_activations(model: Module, x: Tensor, layer_type: type = Tanh, ax=None):
    """Histograms of every Tanh layer's outputs in one plot (the lecture's activation distribution)."""
    import matplotlib.pyplot as plt

    with _recording(model, layer_type) as outputs, torch.no_grad():
        model(x)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3))
    for name, out in outputs:
        t = out.detach().float().cpu()
        saturated = _saturated_percent(t)
        lo, hi = (-1.0, 1.0) if layer_type is Tanh else (t.min().item(), t.max().item())
        hist = torch.histc(t, bins=50, min=lo, max=hi)
        centers = torch.linspace(lo, hi, 51)[:-1] + (hi - lo) / 100
        ax.plot(centers, hist, label=f"{name}: std {t.std():.2f}, saturated {saturated:.1f}%")
    ax.set_title(f"{layer_type.__name__} outputs")
    ax.legend(fontsize=8)
    return ax


def gradient_stats(model: Module, x: Tensor, y: Tensor) -> list[dict]:
    """One forward and backward pass on (x, y); for every weight matrix: gradient mean, std and grad:data ratio.
    The model's own .grad fields are left as they were."""
    rows = []
    for name, p, g in _weight_grads(model, x, y):
        rows.append({"weight": f"{name} {tuple(p.shape)}", "grad mean": g.mean().item(), "grad std": g.std().item(),
                     "grad:data": (g.std() / p.detach().std()).item()})
    return rows


def plot_gradients(model: Module, x: Tensor, y: Tensor, ax=None):
    """Histograms of the gradient of every weight matrix after one backward pass on (x, y)."""
    import matplotlib.pyplot as plt

    grads = _weight_grads(model, x, y)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3))
    for name, p, g in grads:
        g = g.float().cpu()
        hist = torch.histc(g, bins=50)
        edges = torch.linspace(g.min().item(), g.max().item(), 51)
        ax.plot((edges[:-1] + edges[1:]) / 2, hist, label=f"{name} {tuple(p.shape)}: std {g.std():.2e}")
    ax.set_title("weight gradients")
    ax.legend(fontsize=8)
    return ax


class UpdateRatioTracker:
    """Records, for every weight matrix, log10(std(lr * grad) / std(weight)) after each update.

    The lecture's rule of thumb: around -3 (an update changes a weight by about 1/1000 of its size).
    Far below, the layer learns too slowly; far above, too fast. Pass it to RegisterModel.train as
    on_step=tracker: it is called after each optimiser step with the Step (number, lr, optimiser, ...).
    """

    def __init__(self, model: Module, every: int = 1) -> None:
        self.model, self.every = model, every
        self.steps: list[int] = []
        self.ratios: dict[str, list[float]] = {name: [] for name, p in model.named_parameters() if p.ndim == 2}

    def __call__(self, s) -> None:
        """The on_step hook: record after the update of step s.step, made with learning rate s.lr."""
        if s.step % self.every == 0:
            self.record(s.step, s.lr)

    def record(self, step: int, lr: float) -> None:
        """Record the ratios of an update of lr * grad, with the gradients the weights hold now."""
        # look the weights up now, not when the tracker was made: RegisterModel may have moved the model
        # to the GPU since, and moving makes new tensors
        params = dict(self.model.named_parameters())
        weights = [params[name] for name in self.ratios]
        if any(p.grad is None for p in weights):
            missing = [name for name, p in zip(self.ratios, weights) if p.grad is None]
            raise ValueError(f"UpdateRatioTracker.record: no gradient on {missing}; call it after backward()")
        with torch.no_grad():
            values = torch.stack([(lr * p.grad).std() / p.std() for p in weights])
            values = values.log10().tolist()  # one read from the device for all layers
        self.steps.append(step)
        for name, v in zip(self.ratios, values):
            self.ratios[name].append(v)

    def plot(self, ax=None):
        import matplotlib.pyplot as plt

        if not self.steps:
            raise ValueError("UpdateRatioTracker.plot: nothing recorded yet; pass the tracker to train(on_step=...)")
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 3))
        params = dict(self.model.named_parameters())
        for name, values in self.ratios.items():
            ax.plot(self.steps, values, label=f"{name} {tuple(params[name].shape)}")
        ax.axhline(-3, color="k", linestyle="--", linewidth=1)  # the rule-of-thumb level
        ax.set_xlabel("step")
        ax.set_ylabel("log10(update std / data std)")
        ax.legend(fontsize=8)
        return ax
