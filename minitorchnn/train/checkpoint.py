"""Checkpoints: a model's weights, its optimiser's state, vocabulary and history in one file.

Saving writes a temporary file and renames it, so a crash never leaves half a checkpoint, and refuses
weights that are NaN. Loading checks everything (format, architecture, every tensor, the optimiser's
state) before it changes anything: a bad file leaves the model as it was, and every error names the file.
"""
from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import torch

from ..fileio import special_kind, write_atomic, write_error
from ..nn.module import Module
from ..nn.optim import OPTIMIZERS, Optimizer

FORMAT = 1
KEYS = ("format", "model_name", "model_version", "model_repr", "architecture", "model", "optimizer",
        "optimizer_type", "vocab", "block_size", "history")


class CheckpointError(ValueError):
    """A checkpoint that cannot be written or read; the message names the file."""


def architecture(model: Module) -> list[tuple[str, tuple[int, ...]]]:
    """Every tensor's name and shape: what must match for a checkpoint to load into a model."""
    return [(name, tuple(t.shape)) for name, t in model.state_dict().items()]


def check_can_save(path: str | Path) -> Path:
    """Refuse, before any training, a path that could not be written (a folder, a folder we cannot write)
    or that holds something else: only a minitorchnn checkpoint may be overwritten, never a corpus."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; give the checkpoint a file name, like {path / 'model.pt'}")
    kind = special_kind(path)
    if kind is not None:
        raise CheckpointError(f"{path}: is {kind}, not a checkpoint file; give the checkpoint a new file name")
    if path.is_file() and not is_checkpoint(path):
        raise CheckpointError(f"{path}: exists and is not a minitorchnn checkpoint; refusing to overwrite it "
                              f"(give the checkpoint a new file name)")
    err = write_error(path.parent)
    if err is not None:
        raise CheckpointError(f"{path}: cannot write a checkpoint there ({err.strerror or err})")
    return path


def is_checkpoint(path: Path) -> bool:
    """Whether path holds a checkpoint that save() wrote (read on the CPU, nothing is changed)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            contents = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # any file torch cannot read is not ours
        return False
    return isinstance(contents, dict) and contents.get("format") == FORMAT


def _non_finite(state: dict, model: Module) -> list[str]:
    """Weights that are NaN or infinite, and buffers that are NaN (a causal mask holds -inf on purpose)."""
    params = {name for name, _ in model.named_parameters()}
    return [name for name, t in state.items() if t.is_floating_point() and
            (t.isnan().any() or (name in params and not torch.isfinite(t).all()))]


def save_checkpoint(path: str | Path, contents: dict, model: Module) -> Path:
    """Write contents (the KEYS above, format included) atomically; NaN or infinite weights are refused."""
    path = Path(path)
    bad = _non_finite(contents["model"], model)
    if bad:
        raise CheckpointError(f"{path}: not saved, the weights {bad[:3]} hold NaN or infinite values "
                              f"(did training diverge?); any file already there was left as it was")
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()  # serialised in memory: a full disk is then an OSError that says so, not torch's
    torch.save(contents, buffer)
    write_atomic(path, buffer.getvalue())  # a crash or a full disk mid-save leaves the old checkpoint whole
    return path


def read_checkpoint(path: str | Path, model: Module, device: torch.device) -> tuple[dict, Optimizer | None]:
    """Read and check a checkpoint against model, without changing model; returns the contents and a
    new optimiser holding the saved state (None if it was saved before any training)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty, not a checkpoint")
    try:
        with warnings.catch_warnings():  # torch's advice about pickle protocols is noise here: we explain below
            warnings.simplefilter("ignore")
            contents = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # truncated zip, foreign pickle, random bytes: one message, no pickle advice
        raise CheckpointError(f"{path}: not a minitorchnn checkpoint, or a damaged one (truncated, or written "
                              f"by another program): it could not be read ({type(err).__name__})") from None
    if not isinstance(contents, dict) or contents.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a minitorchnn checkpoint of format {FORMAT}")
    missing = [k for k in KEYS if k not in contents]
    if missing:
        raise CheckpointError(f"{path}: the checkpoint lacks {missing}; it is damaged or from another version")
    contents = renamed_since_written(contents)
    _check_architecture(path, contents, model)
    state = contents["model"]
    own = model.state_dict()
    if not isinstance(state, dict) or set(state) != set(own):
        missing, unexpected = sorted(set(own) - set(state))[:5], sorted(set(state) - set(own))[:5]
        raise CheckpointError(f"{path}: its weights do not list this model's tensors "
                              f"(missing {missing}, unexpected {unexpected})")
    wrong = [n for n, t in own.items() if not isinstance(state[n], torch.Tensor) or state[n].shape != t.shape]
    if wrong:
        raise CheckpointError(f"{path}: tensors of the wrong shape: {wrong[:5]}")
    bad = _non_finite(state, model)
    if bad:
        raise CheckpointError(f"{path}: the weights {bad[:3]} hold NaN or infinite values; refusing to load them")
    optimizer = None
    if contents["optimizer"] is not None:
        kind = {cls.__name__: cls for cls in OPTIMIZERS.values()}.get(contents["optimizer_type"])
        if kind is None:
            raise CheckpointError(f"{path}: unknown optimiser {contents['optimizer_type']!r}")
        optimizer = kind(model.parameters(), lr=0.0)  # a new one: the model's tensors are not touched
        try:
            optimizer.load_state_dict(contents["optimizer"])
        except (KeyError, ValueError, TypeError, AttributeError) as err:
            raise CheckpointError(f"{path}: the optimiser's state does not fit this model: {err}") from None
    _check_vocab_and_history(path, contents["vocab"], contents["history"])
    return contents, optimizer


def _check_vocab_and_history(path: Path, vocab, history) -> None:
    """The vocabulary: None, "bytes" or a list of characters; the history: lists of numbers by name."""
    if not (vocab is None or vocab == "bytes" or (isinstance(vocab, list) and all(isinstance(c, str) for c in vocab))):
        raise CheckpointError(f"{path}: the vocabulary is damaged")
    if not (isinstance(history, dict) and all(isinstance(v, list) for v in history.values())):
        raise CheckpointError(f"{path}: the training history is damaged")


def _check_architecture(path: Path, contents: dict, model: Module) -> None:
    theirs = [(name, tuple(shape)) for name, shape in contents["architecture"]]
    ours = architecture(model)
    if theirs == ours and contents["model_repr"] == repr(model):
        return
    diff = next(((a, b) for a, b in zip(theirs, ours) if a != b), None)
    detail = (f"first difference: checkpoint has {diff[0]}, this model has {diff[1]}" if diff else
              f"checkpoint has {len(theirs)} tensors, this model {len(ours)}" if len(theirs) != len(ours)
              else f"checkpoint model is\n{contents['model_repr']}\nthis model is\n{model!r}")
    raise CheckpointError(f"{path} was saved from a different architecture ({contents['model_name']} "
                          f"{contents['model_version']}): {detail}")


# FeedForward's layers were a Sequential, "ffwd.net.0" and "ffwd.net.2", until they got names: fc and proj
_OLD_FEEDFORWARD = {".ffwd.net.0.": ".ffwd.fc.", ".ffwd.net.2.": ".ffwd.proj."}
_OLD_FEEDFORWARD_REPR = re.compile(r"\(net\): Sequential\(\n(\s*)\(0\): (.*)\n\s*\(1\): (.*)\n\s*\(2\): (.*)\n"
                                   r"\s*\(3\): (.*)\n\s*\)")


def renamed_since_written(contents: dict) -> dict:
    """A checkpoint written before a layer was renamed, with today's names, so that it still loads."""
    def rename(name: str) -> str:
        for old, new in _OLD_FEEDFORWARD.items():
            name = name.replace(old, new)
        return name

    def new_repr(match: re.Match) -> str:
        indent = match.group(1)[2:]  # one level up: the Sequential between them is gone
        names = ("fc", "activation", "proj", "dropout")
        return f"\n{indent}".join(f"({n}): {layer}" for n, layer in zip(names, match.groups()[1:])).lstrip()

    if not isinstance(contents.get("model"), dict) or not any(".ffwd.net." in k for k in contents["model"]):
        return contents
    return {**contents, "model": {rename(k): v for k, v in contents["model"].items()},
            "architecture": [(rename(name), shape) for name, shape in contents["architecture"]],
            "model_repr": _OLD_FEEDFORWARD_REPR.sub(new_repr, contents["model_repr"])}
