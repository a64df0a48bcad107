"""CharVocab: characters <-> integer ids."""
from __future__ import annotations

from torch import Tensor


class CharVocab:
    """Characters <-> integer ids. For names, '.' (start and end of a word) is id 0."""

    def __init__(self, chars: list[str]) -> None:
        if len(set(chars)) != len(chars):
            raise ValueError("CharVocab got repeated characters")
        self.itos = list(chars)
        self.stoi = {ch: i for i, ch in enumerate(self.itos)}

    @classmethod
    def from_words(cls, words: list[str], boundary: str = ".") -> CharVocab:
        return cls([boundary] + sorted(set("".join(words)) - {boundary}))

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.stoi[ch] for ch in text]
        except KeyError as err:
            raise KeyError(f"character {err.args[0]!r} is not in the vocabulary of {len(self)} characters") from None

    def decode(self, ids) -> str:
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        return "".join(self.itos[i] for i in ids)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharVocab) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"CharVocab({len(self)} chars: {''.join(self.itos)!r})"
