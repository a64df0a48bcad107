"""names.txt as the lectures use it: the words, their (context, next character) pairs, the 80/10/10 split."""
from __future__ import annotations

import math
import random
from pathlib import Path

import torch
from torch import Tensor

from .files import data_path
from .vocab import CharVocab

NAMES_ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def load_words(path: str | Path | None = None, alphabet: str | None = NAMES_ALPHABET) -> list[str]:
    """The names of names.txt (or of another one-word-per-line file), lower-cased, blank lines dropped.

    A character outside alphabet (a-z; None accepts any) is refused with its line, before it could
    become an index the model's Embedding does not have.
    """
    path = Path(path) if path is not None else data_path("names.txt")
    words = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        word = line.strip().lower()
        if not word:
            continue
        if alphabet is not None:
            bad = next((ch for ch in word if ch not in alphabet), None)
            if bad is not None:
                raise ValueError(f"{path}, line {number}: {line.strip()!r} has the character {bad!r}, which is "
                                 f"not in the names vocabulary ('.' and {alphabet[0]}-{alphabet[-1]})")
        words.append(word)
    return words


def build_contexts(words: list[str], vocab: CharVocab, block_size: int) -> tuple[Tensor, Tensor]:
    """Every (context, next char) pair of the words: X (N, block_size) long, Y (N,) long.

    A context starts as block_size '.' and slides one character at a time; each word ends with '.'.
    """
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = vocab.stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(X, dtype=torch.long).reshape(-1, block_size), torch.tensor(Y, dtype=torch.long)


class NamesDataset(dict):
    """{"train": (X, Y), "val": (X, Y), "test": (X, Y)} with the vocab and the shuffled words attached."""

    def __init__(self, splits: dict, vocab: CharVocab, block_size: int, words: list[str],
                 split_words: dict[str, list[str]] | None = None) -> None:
        super().__init__(splits)
        self.vocab, self.block_size, self.words = vocab, block_size, words
        self.split_words = split_words
        self._cuts = {block_size: self}  # every block size cut so far, shared by all the cuts

    def with_block_size(self, block_size: int) -> NamesDataset:
        """The same train/val/test words, cut into contexts of another length (built once per length)."""
        if block_size not in self._cuts:
            if self.split_words is None:
                raise ValueError("with_block_size needs the words of each split (build the dataset with names_dataset)")
            splits = {k: build_contexts(v, self.vocab, block_size) for k, v in self.split_words.items()}
            cut = NamesDataset(splits, self.vocab, block_size, self.words, self.split_words)
            cut._cuts = self._cuts
            self._cuts[block_size] = cut
        return self._cuts[block_size]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v[1]):,}" for k, v in self.items())
        return f"NamesDataset(block_size={self.block_size}, vocab_size={len(self.vocab)}, {sizes})"


def names_dataset(block_size: int = 8, seed: int = 42, words: list[str] | None = None,
                  splits: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> NamesDataset:
    """Train/val/test contexts as the lectures build them: random.seed(seed), shuffle the words, 80/10/10."""
    if len(splits) != 3 or not math.isclose(sum(splits), 1.0) or min(splits) < 0:
        raise ValueError(f"splits (train, val, test) must be three fractions that add up to 1, got {splits}")
    words = list(load_words() if words is None else words)
    if not words:
        raise ValueError("names_dataset got an empty word list")
    vocab = CharVocab.from_words(words)
    random.seed(seed)
    random.shuffle(words)
    n1 = int(splits[0] * len(words))
    n2 = int((splits[0] + splits[1]) * len(words))
    parts = {"train": words[:n1], "val": words[n1:n2], "test": words[n2:]}
    return NamesDataset({k: build_contexts(v, vocab, block_size) for k, v in parts.items()}, vocab, block_size,
                        words, parts)
