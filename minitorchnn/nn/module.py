"""A tiny Module base: finds parameters, buffers and sub-layers among an object's attributes.

A parameter is any tensor attribute with ``requires_grad=True``; a buffer is any other tensor
attribute (running statistics, masks). Sub-layers are Module attributes, or lists/tuples of them.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor


class Module:
    """Base class of every minitorchnn layer: parameters, train/eval, to(device), state_dict, repr."""

    training: bool = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # --- finding what the layer holds -------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct sub-layers, in the order they were assigned."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def children(self) -> list[Module]:
        return [child for _, child in self.named_children()]

    def modules(self) -> Iterator[Module]:
        """This layer and every layer below it, depth first."""
        yield self
        for child in self.children():
            yield from child.modules()

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This layer (named prefix, "" at the top) and every layer below it with its dotted name."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}{name}" if not prefix else f"{prefix}.{name}")

    def _named_tensors(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        for name, value in vars(self).items():
            if isinstance(value, Tensor):
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child._named_tensors(f"{prefix}{name}.")

    def named_parameters(self) -> Iterator[tuple[str, Tensor]]:
        return ((n, t) for n, t in self._named_tensors() if t.requires_grad)

    def named_buffers(self) -> Iterator[tuple[str, Tensor]]:
        return ((n, t) for n, t in self._named_tensors() if not t.requires_grad)

    def parameters(self) -> list[Tensor]:
        """Every trainable tensor of this layer and its sub-layers, in the order of named_parameters()."""
        # the same walk as _named_tensors without building names: a training loop may call this every step
        params = [t for t in vars(self).values() if isinstance(t, Tensor) and t.requires_grad]
        for child in self.children():
            params += child.parameters()
        return params

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # --- modes and devices ------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Switch this layer and all sub-layers to training mode (eval() when mode is False)."""
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Module:
        """Move every tensor (in place on this object) to a device and/or floating dtype."""
        for m in self.modules():
            m._move_own_tensors(device, dtype)
        return self

    def _move_own_tensors(self, device, dtype) -> None:
        """Move the tensors held directly by this layer (not by its sub-layers)."""
        for name, value in list(vars(self).items()):
            if isinstance(value, Tensor):
                setattr(self, name, _moved(value, device, dtype))

    def double(self) -> Module:
        return self.to(dtype=torch.float64)

    # --- saving and loading -----------------------------------------------------------------
    def state_dict(self) -> dict[str, Tensor]:
        """Name -> tensor (detached, not copied) for every parameter and buffer."""
        return {name: t.detach() for name, t in self._named_tensors()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Copy tensors in by name; any missing, unexpected or mis-shaped entry is an error, and
        nothing is changed unless every entry fits."""
        own = dict(self._named_tensors())
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise KeyError(
                f"{type(self).__name__}.load_state_dict: missing keys {missing}, unexpected keys {unexpected}"
            )
        for name, t in own.items():
            if tuple(state[name].shape) != tuple(t.shape):
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: '{name}' expected shape {tuple(t.shape)}, "
                    f"got {tuple(state[name].shape)}"
                )
        with torch.no_grad():
            for name, t in own.items():
                t.copy_(state[name])

    # --- printing ---------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The arguments shown inside the parentheses of repr(); layers override this."""
        return ""

    def short_name(self) -> str:
        """The one name every error message gives this layer: its class and settings on one line,
        `BatchNorm1d(128, eps=1e-05, momentum=0.1)`, or something shorter where a layer has one."""
        return f"{type(self).__name__}({self.extra_repr()})"

    def expect(self, ok: bool, message: str, *args, error: type[Exception] = ValueError) -> None:
        """A one-line check in a forward pass: unless ok, raise error("<this layer's name> <message>")."""
        if not ok:  # tested here first: a forward pass runs its checks every step
            check(ok, "{} " + message, self.short_name, *args, error=error)

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in children:
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        lines.append(")")
        return "\n".join(lines)


def check(ok: bool, message: str, *args, error: type[Exception] = ValueError) -> None:
    """Every check of the framework in one line: unless ok, raise error(message.format(*args)).

    The message is only formatted when the check fails, so a check costs almost nothing in a forward pass
    that runs every step: an argument that is a function is only called then, a shape only written out then."""
    if not ok:
        raise error(message.format(*[_shown(arg) for arg in args]))


def _shown(arg):
    """A check's argument as its message shows it: a function's result, a torch.Size as a tuple."""
    return arg() if callable(arg) else tuple(arg) if isinstance(arg, torch.Size) else arg


def check_sizes(layer: str, minimum: int = 1, **sizes: int) -> None:
    """Every size of a layer or model must be a whole number >= minimum: refused in the constructor, not at a batch."""
    for key, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"{layer}: {key} must be an integer >= {minimum}, got {value!r}")


def check_setting(layer: str, name: str, value, low: float, high: float, bounds: str = "[]") -> None:
    """A setting must be a finite number in its range: bounds "[]" takes both ends, "(]" or "[)" leaves one out."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    above = number and (value >= low if bounds[0] == "[" else value > low)
    below = number and (value <= high if bounds[1] == "]" else value < high)
    if not (above and below):
        raise ValueError(f"{layer}: {name} must be a number in {bounds[0]}{low}, {high}{bounds[1]}, got {value!r}")


def check_fits(layer: str, *shape: int) -> None:
    """Refuse, before allocating it, a float32 weight larger than this machine's memory."""
    size, memory = math.prod(shape) * 4, memory_bytes()
    if memory and size > memory:
        raise ValueError(f"{layer}: a weight of shape {shape} would take {size / 2**30:,.1f} GiB, more than "
                         f"this machine's {memory / 2**30:,.1f} GiB of memory")


def memory_bytes() -> int | None:
    """The machine's physical memory, where the system says (None where it does not)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _moved(t: Tensor, device, dtype) -> Tensor:
    """t on the new device/dtype; a parameter stays a leaf that requires grad."""
    target_dtype = dtype if (dtype is not None and t.is_floating_point()) else t.dtype
    moved = t.detach().to(device=device, dtype=target_dtype)
    if moved.data_ptr() == t.data_ptr() and moved.device == t.device and moved.dtype == t.dtype:
        return t  # nothing changed: keep the very same tensor so optimisers still hold it
    return moved.requires_grad_(t.requires_grad)


@contextmanager
def inference(module: Module) -> Iterator[Module]:
    """Run a block in eval mode without gradients, then put the module back in the mode it was in."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield module
    finally:
        module.train(was_training)
