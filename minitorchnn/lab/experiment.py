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

from .comparison import VARIANT_NAME, Comparison, RunFolder, Variant, compare
from ..train.config import FIELDS, LECTURE_SGD, ConfigError, TrainConfig
from ..data.corpus import shakespeare_dataset
from ..data.vocab import CharVocab
from ..data.files import data_path
from ..data.names import load_words, names_dataset
from ..nn import (BatchNorm1d, BatchNorm1dPerPosition, Dropout, Embedding, Flatten, FlattenConsecutive,
                         LayerNorm1d, Linear, ReLU, Sequential, Tanh)
from ..models import MODELS

LAYERS = {cls.__name__: cls for cls in (Embedding, Linear, BatchNorm1d, BatchNorm1dPerPosition, LayerNorm1d,
                                        FlattenConsecutive, Flatten, Tanh, ReLU, Dropout)}
DATASETS = {"names": "names", "shakespeare": "text"}  # an experiment's data -> the kind of model it feeds
TOP_KEYS = ("name", "description", "data", "steps", "seeds", "train", "variants")
VARIANT_KEYS = ("description", "model", "args", "layers", "block_size", "train")
TRAIN_KEYS = tuple(k for k in FIELDS if k not in ("steps", "seed"))  # steps and seeds are top-level keys


def data_vocab_size(data: str) -> int:
    """The vocabulary size of an experiment's data, read from the data itself (never a constant)."""
    if data == "names":
        return len(CharVocab.from_words(load_words()))
    return len(set(data_path("shakespeare.txt").read_text(encoding="utf-8")))


class ExperimentError(ValueError):
    """A mistake in an experiment file; the message names the file, the key and the line."""


@dataclass
class Experiment:
    """A parsed experiment file: what to train (variants), on what (data), for how long, with which seeds."""

    name: str
    data: str
    steps: int
    seeds: tuple[int, ...]
    train: TrainConfig
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
        steps = self.steps if steps is None else steps
        seeds = tuple(seeds) if seeds is not None else self.seeds
        identity = {**self.config, "steps": steps, "seeds": list(seeds)}
        folder = RunFolder(Path(out_dir), identity) if out_dir is not None else None
        return compare(self.variants, self.dataset(), seeds, config=self.train, device=device, out_dir=folder,
                       progress=progress, steps=steps)


def load_experiment(path: str | Path) -> Experiment:
    """Read and check an experiment file; raises ExperimentError naming the key and line of any mistake."""
    path = Path(path)
    if path.is_dir():
        raise ExperimentError(f"{path}: is a folder, not an experiment file (give a .toml file)")
    if not path.exists():
        raise FileNotFoundError(f"no experiment file {path}")
    raw_bytes = path.read_bytes()
    try:
        if b"\0" in raw_bytes:
            raise UnicodeDecodeError("utf-8", raw_bytes, 0, 1, "NUL byte")
        text = raw_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise ExperimentError(f"{path}: not a text file; an experiment file is TOML text (see experiments/)") from None
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
    if not re.fullmatch(VARIANT_NAME, name):
        raise where.error("name", f"name becomes the run folder runs/NAME: use letters, digits, '.', '_' and '-' "
                                  f"(no '/' or '..'), got {name!r}")
    data = raw.get("data", "names")
    if data not in DATASETS:
        raise where.error("data", f"data must be one of {', '.join(DATASETS)}, got {data!r}")
    steps = _typed(raw, "steps", int, where)
    if steps < 1:
        raise where.error("steps", f"steps must be at least 1, got {steps}")
    seeds = raw.get("seeds", [0, 1, 2])
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int for s in seeds):
        raise where.error("seeds", f"seeds must be a non-empty list of integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise where.error("seeds", f"seeds {seeds} repeat a seed: a repeated run would shrink the spread over seeds")
    train = _train_config(LECTURE_SGD.replace(steps=steps),
                          _typed(raw, "train", dict, where, default={}), where, "train")
    variants_raw = _typed(raw, "variants", dict, where)
    if not variants_raw:
        raise where.error("variants", "variants is empty: add at least one [variants.NAME] table")
    vocab_size = data_vocab_size(data)
    variants = {}
    for vname, spec in variants_raw.items():
        if not re.fullmatch(VARIANT_NAME, vname):
            raise where.error(vname, f"variant name {vname!r} becomes a folder name: use letters, digits, '.', "
                                     f"'_' and '-'")
        variants[vname] = _variant(vname, spec, data, vocab_size, train, where)
    config = {k: v for k, v in raw.items() if k != "description"}
    return Experiment(name, data, steps, tuple(seeds), train, variants, config, raw.get("description", ""))


KIND_NAMES = {int: "an integer", str: "a string", dict: "a table", float: "a number"}


def _typed(table: dict, key: str, kind: type, where: _Locator, default=None, section: str | None = None):
    value = table.get(key, default)
    ok = isinstance(value, (int, float) if kind is float else kind) and not isinstance(value, bool)
    if not ok:
        raise where.error(key, f"{key} must be {KIND_NAMES[kind]}, got {value!r}", section)
    return value


def _train_config(base: TrainConfig, table: dict, where: _Locator, section: str) -> TrainConfig:
    """A [train] table on top of base: known keys only, every value checked by TrainConfig itself."""
    for key in table:
        if key not in TRAIN_KEYS:
            raise where.error(key, f"{section}: unknown setting {key!r}; known: {', '.join(TRAIN_KEYS)}", section)
    try:
        return base.replace(**table)
    except ConfigError as err:  # wrong kinds of value too: TrainConfig checks every type itself
        raise where.error(err.field, f"{section}: {err}", section) from None


def _variant(name: str, spec, data: str, vocab_size: int, train: TrainConfig, where: _Locator) -> Variant:
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
    table = _typed(spec, "train", dict, where, default={}, section=section)
    _train_config(train, table, where, f"{section}.train")  # checked here; compare() applies it
    if "model" in spec:
        model = spec["model"]
        if model not in MODELS:
            raise where.error("model", f"{section}: unknown model {model!r}; known models: {', '.join(MODELS)}",
                              section)
        block_size = MODELS[model].block_size if block_size is None else block_size
        build = _model_builder(section, spec, block_size, data, vocab_size, where)
    else:
        if block_size is None:
            raise where.error(name, f"{section} needs block_size (how many characters the model reads)", section)
        build = _layers_builder(section, spec["layers"], where)
    return Variant(build, block_size, table)


def _model_builder(section: str, spec: dict, block_size: int, data: str, vocab_size: int, where: _Locator):
    model = spec["model"]
    entry = MODELS[model]
    if entry.data != DATASETS[data]:
        fits = [n for n, m in MODELS.items() if m.data == DATASETS[data]]
        raise where.error("model", f"{section}: model {model!r} reads {entry.data} data, not {data}; "
                                   f"models for {data}: {', '.join(fits)}", section)
    args = dict(_typed(spec, "args", dict, where, default={}, section=section))
    if "block_size" in args:
        raise where.error("args", f"{section}: give block_size as the variant's block_size, not in args", section)
    if "vocab_size" in args and args.pop("vocab_size") != vocab_size:
        raise where.error("args", f"{section}: args.vocab_size does not match the data: {data} has a vocabulary "
                                  f"of {vocab_size} (leave vocab_size out: it comes from the data)", section)
    try:
        entry(vocab_size, block_size, **args)  # build once now: a bad value shows before training
    except (ValueError, TypeError) as err:
        raise where.error("args" if "args" in spec else "model",
                          f"{section}: model {model!r} cannot be built with these arguments ({err})", section) from None
    return lambda: entry(vocab_size, block_size, **args)


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
    """Finds the line of a key (or of a literal text) in the experiment file, for error messages; keys in
    [section] tables and in inline tables (`args = { n_hidden = 200 }`) alike."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.lines = path, text.splitlines()

    def _start_of(self, section: str | None) -> int:
        """The line index where a section begins: its [header], or the `key = {` of an inline table."""
        if not section:
            return 0
        header = re.compile(r"^\s*\[\s*" + re.escape(section).replace(r"\.", r"\s*\.\s*") + r"\s*\]")
        for i, line in enumerate(self.lines):
            if header.match(line):
                return i
        parent, _, last = section.rpartition(".")
        start = self._start_of(parent)
        inline = re.compile(r"(^|[{,])\s*(" + re.escape(section) + r'|"?' + re.escape(last) + r'"?)\s*=\s*\{')
        return next((i for i in range(start, len(self.lines)) if inline.search(self.lines[i])), start)

    def line_of(self, needle: str, section: str | None = None, literal: bool = False) -> int | None:
        key = re.compile(r"(^|[{,.])\s*\"?" + re.escape(needle) + r"\"?\s*=|\[.*\b" + re.escape(needle) + r"\b.*\]")
        start = self._start_of(section)
        for i in range(start, len(self.lines)):
            line = self.lines[i].split("#", 1)[0] if not literal else self.lines[i]
            if (needle in line) if literal else key.search(line):
                return i + 1
        return None

    def error(self, needle: str, message: str, section: str | None = None, literal: bool = False) -> ExperimentError:
        line = self.line_of(needle, section, literal)
        return ExperimentError(f"{self.path}{f', line {line}' if line else ''}: {message}")
