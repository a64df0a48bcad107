"""Experiments written as TOML files: a grid of model variants x seeds, run by compare().

    name = "loss-analysis"
    data = "names"                      # or "shakespeare"
    steps = 20000
    seeds = [0, 1, 2]

    [train]                             # compare()'s settings: batch_size, lr, schedule, momentum, ...
    lr = 0.1

    [variants.plain-block3]             # a named model with its arguments ...
    model = "mlp"
    block_size = 3
    args = { n_hidden = 200 }

    [variants.relu]                     # ... or a list of layers
    block_size = 3
    layers = ["Embedding(27, 10)", "FlattenConsecutive(3)", "Linear(30, 200)", "ReLU()", "Linear(200, 27)"]

Every mistake is reported with the file, the key and its line, before anything trains.
"""
from __future__ import annotations

import ast
import inspect
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .attention import Dropout
from .comparison import TRAIN_SETTINGS, Comparison, Variant, compare
from .data import names_dataset, shakespeare_dataset
from .gpt import GPT
from .layers import (BatchNorm1d, BatchNorm1dPerPosition, Embedding, Flatten, FlattenConsecutive, LayerNorm1d,
                     Linear, ReLU, Sequential, Tanh)
from .models import mlp, wavenet
from .wavegpt import WaveGPT

LAYERS = {cls.__name__: cls for cls in (Embedding, Linear, BatchNorm1d, BatchNorm1dPerPosition, LayerNorm1d,
                                        FlattenConsecutive, Flatten, Tanh, ReLU, Dropout)}
MODEL_BUILDERS = {"mlp": mlp, "wavenet": wavenet, "gpt": GPT, "wavegpt": WaveGPT}
DATASETS = ("names", "shakespeare")
TOP_KEYS = ("name", "description", "data", "steps", "seeds", "train", "variants")
VARIANT_KEYS = ("description", "model", "args", "layers", "block_size", "train")
VOCAB_SIZE = {"names": 27, "shakespeare": 65}


class ExperimentError(ValueError):
    """A mistake in an experiment file; the message names the file, the key and the line."""


@dataclass
class Experiment:
    """A parsed experiment file: what to train (variants), on what (data), for how long, with which seeds."""

    name: str
    data: str
    steps: int
    seeds: tuple[int, ...]
    train: dict
    variants: dict[str, Variant]
    config: dict  # the file's settings, stored with the runs to recognise them on resume
    description: str = ""

    def dataset(self):
        if self.data == "shakespeare":
            return shakespeare_dataset()
        sizes = [v.block_size for v in self.variants.values() if v.block_size]
        return names_dataset(block_size=sizes[0] if sizes else 3)

    def run(self, out_dir: str | Path | None = None, steps: int | None = None, seeds=None,
            device=None, progress: bool | None = None) -> Comparison:
        """Train the grid (steps and seeds may be overridden, e.g. for a short run) and return the Comparison."""
        steps = steps or self.steps
        seeds = tuple(seeds) if seeds is not None else self.seeds
        config = {**self.config, "steps": steps, "seeds": list(seeds)}
        return compare(self.variants, self.dataset(), steps, seeds, **self.train, device=device,
                       out_dir=out_dir, config=config, progress=progress)


def load_experiment(path: str | Path) -> Experiment:
    """Read and check an experiment file; raises ExperimentError naming the key and line of any mistake."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no experiment file {path}")
    text = path.read_text()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:  # its message already ends with "(at line L, column C)"
        raise ExperimentError(f"{path}: not valid TOML: {err}") from None
    where = _Locator(path, text)

    for key in raw:
        if key not in TOP_KEYS:
            raise where.error(key, f"unknown key {key!r}; known keys: {', '.join(TOP_KEYS)}")
    for key in ("name", "steps", "variants"):
        if key not in raw:
            raise ExperimentError(f"{path}: missing key {key!r} (every experiment needs name, steps and variants)")
    name = _typed(raw, "name", str, where)
    data = raw.get("data", "names")
    if data not in DATASETS:
        raise where.error("data", f"data must be one of {', '.join(DATASETS)}, got {data!r}")
    steps = _typed(raw, "steps", int, where)
    if steps < 1:
        raise where.error("steps", f"steps must be at least 1, got {steps}")
    seeds = raw.get("seeds", [0, 1, 2])
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int for s in seeds):
        raise where.error("seeds", f"seeds must be a non-empty list of integers, got {seeds!r}")
    train = _train_settings(_typed(raw, "train", dict, where, default={}), where, "train")
    variants_raw = _typed(raw, "variants", dict, where)
    if not variants_raw:
        raise where.error("variants", "variants is empty: add at least one [variants.NAME] table")
    variants = {vname: _variant(vname, spec, data, where) for vname, spec in variants_raw.items()}
    config = {k: v for k, v in raw.items() if k != "description"}
    return Experiment(name, data, steps, tuple(seeds), train, variants, config, raw.get("description", ""))


KIND_NAMES = {int: "an integer", str: "a string", dict: "a table", float: "a number"}


def _typed(table: dict, key: str, kind: type, where: _Locator, default=None, section: str | None = None):
    value = table.get(key, default)
    ok = isinstance(value, (int, float) if kind is float else kind) and not isinstance(value, bool)
    if not ok:
        raise where.error(key, f"{key} must be {KIND_NAMES[kind]}, got {value!r}", section)
    return value


SCHEDULES = {"step": "step", "constant": None, "exponential": "exponential", "cosine": "cosine"}


def _train_settings(table: dict, where: _Locator, section: str) -> dict:
    """Check a [train] table: known keys, each of the right type and range; 'constant' means no schedule."""
    out = {}
    for key, value in table.items():
        if key not in TRAIN_SETTINGS:
            raise where.error(key, f"{section}: unknown setting {key!r}; known: {', '.join(TRAIN_SETTINGS)}", section)
        if key in ("batch_size", "eval_iters"):
            value = _typed(table, key, int, where, section=section)
            if value < 1:
                raise where.error(key, f"{section}: {key} must be at least 1, got {value}", section)
        elif key in ("lr", "momentum", "weight_decay", "clip"):
            value = _typed(table, key, float, where, section=section)
            if value < 0 or (key == "lr" and value == 0):
                raise where.error(key, f"{section}: {key} must be {'above' if key == 'lr' else 'at least'} 0, "
                                       f"got {value}", section)
        elif key == "schedule":
            if value not in SCHEDULES:
                raise where.error(key, f"{section}: schedule must be one of {', '.join(SCHEDULES)}, got {value!r}",
                                  section)
            value = SCHEDULES[value]
        elif key == "optimizer" and value not in ("sgd", "adamw"):
            raise where.error(key, f"{section}: optimizer must be 'sgd' or 'adamw', got {value!r}", section)
        out[key] = value
    return out


def _variant(name: str, spec, data: str, where: _Locator) -> Variant:
    section = f"variants.{name}"
    if not isinstance(spec, dict):
        raise where.error(name, f"variants.{name} must be a table ([variants.{name}]), got {spec!r}")
    for key in spec:
        if key not in VARIANT_KEYS:
            raise where.error(key, f"{section}: unknown key {key!r}; known keys: {', '.join(VARIANT_KEYS)}", section)
    if ("model" in spec) == ("layers" in spec):
        raise where.error(name, f"{section} needs exactly one of `model = \"...\"` or `layers = [...]`", section)
    block_size = spec.get("block_size")
    if block_size is not None and (type(block_size) is not int or block_size < 1):
        raise where.error("block_size", f"{section}: block_size must be a positive integer, got {block_size!r}",
                          section)
    train = _train_settings(_typed(spec, "train", dict, where, default={}, section=section), where, section)
    if block_size is None and "model" in spec and spec["model"] in MODEL_BUILDERS:
        default = inspect.signature(MODEL_BUILDERS[spec["model"]]).parameters["block_size"].default
        block_size = None if default is inspect.Parameter.empty else default
    if block_size is None:
        raise where.error(name, f"{section} needs block_size (how many characters the model reads)", section)
    if "model" in spec:
        build = _model_builder(section, spec, block_size, data, where)
    else:
        build = _layers_builder(section, spec["layers"], where)
    return Variant(build, block_size, train)


def _model_builder(section: str, spec: dict, block_size: int, data: str, where: _Locator):
    model = spec["model"]
    if model not in MODEL_BUILDERS:
        raise where.error("model", f"{section}: unknown model {model!r}; known models: "
                                   f"{', '.join(MODEL_BUILDERS)}", section)
    args = _typed(spec, "args", dict, where, default={}, section=section)
    fn = MODEL_BUILDERS[model]
    kwargs = {"vocab_size": VOCAB_SIZE[data], "block_size": block_size, **args}
    try:
        inspect.signature(fn).bind(**kwargs)
    except TypeError as err:
        raise where.error("args" if "args" in spec else "model",
                          f"{section}: model {model!r} cannot take these arguments ({err}); it takes "
                          f"{_signature_text(fn)}", section) from None
    try:
        fn(**kwargs)  # build once now: a bad value (an odd block_size for wavenet, say) shows before training
    except (ValueError, TypeError) as err:
        raise where.error("args" if "args" in spec else "model", f"{section}: {err}", section) from None
    return lambda: fn(**kwargs)


def _layers_builder(section: str, specs, where: _Locator):
    if not isinstance(specs, list) or not specs or not all(isinstance(s, str) for s in specs):
        raise where.error("layers", f"{section}: layers must be a non-empty list of strings like \"Linear(30, 200)\"",
                          section)
    parsed = [_parse_layer(section, i, s, where) for i, s in enumerate(specs)]
    for cls, args, kwargs in parsed:
        cls(*args, **kwargs)  # arguments were checked in _parse_layer; this builds without surprises
    return lambda: Sequential([cls(*args, **kwargs) for cls, args, kwargs in parsed])


def _parse_layer(section: str, i: int, spec: str, where: _Locator):
    """'Linear(30, 200, bias=False)' -> (Linear, (30, 200), {'bias': False}); literals only, nothing is evaluated."""
    label = f"{section}.layers[{i}] {spec!r}"
    try:
        node = ast.parse(spec.strip(), mode="eval").body
    except SyntaxError:
        raise where.error(spec, f"{label}: not a layer like \"Linear(30, 200)\"", section, literal=True) from None
    call = node if isinstance(node, ast.Call) else None
    head = call.func if call else node
    if not isinstance(head, ast.Name):
        raise where.error(spec, f"{label}: not a layer like \"Linear(30, 200)\"", section, literal=True)
    if head.id not in LAYERS:
        raise where.error(spec, f"{label}: unknown layer {head.id!r}; known layers: {', '.join(LAYERS)}",
                          section, literal=True)
    cls = LAYERS[head.id]
    try:
        args = tuple(ast.literal_eval(a) for a in call.args) if call else ()
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords} if call else {}
    except ValueError:
        raise where.error(spec, f"{label}: arguments must be numbers, strings or True/False", section,
                          literal=True) from None
    try:
        inspect.signature(cls).bind(*args, **kwargs)
        cls(*args, **kwargs)
    except (TypeError, ValueError) as err:
        raise where.error(spec, f"{label}: {err}; it takes {_signature_text(cls)}", section,
                          literal=True) from None
    return cls, args, kwargs


def _signature_text(fn) -> str:
    """'Linear(in_features, out_features, bias=True)': the arguments a layer or model takes."""
    params = [p.name if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}"
              for p in inspect.signature(fn).parameters.values()]
    return f"{getattr(fn, '__name__', fn)}({', '.join(params)})"


class _Locator:
    """Finds the line of a key (or of a literal text) in the experiment file, for error messages."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.lines = path, text.splitlines()

    def line_of(self, needle: str, section: str | None = None, literal: bool = False) -> int | None:
        start = 0
        if section is not None:  # search below the [section] header when there is one
            header = re.compile(r"^\s*\[\s*" + re.escape(section).replace(r"\.", r"\s*\.\s*") + r"\s*\]")
            start = next((i for i, line in enumerate(self.lines) if header.match(line)), 0)
        key = re.compile(r"^\s*\"?" + re.escape(needle) + r"\"?\s*=|\[.*\b" + re.escape(needle) + r"\b.*\]")
        for i in range(start, len(self.lines)):
            line = self.lines[i]
            if (needle in line) if literal else (key.search(line) or re.search(rf"\b{re.escape(needle)}\s*=", line)):
                return i + 1
        return None

    def error(self, needle: str, message: str, section: str | None = None, literal: bool = False) -> ExperimentError:
        line = self.line_of(needle, section, literal)
        return ExperimentError(f"{self.path}{f', line {line}' if line else ''}: {message}")
