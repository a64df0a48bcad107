"""The course's data: finding names.txt and shakespeare.txt, character vocabularies, datasets, batches.

A data file is looked for, in order: at the project's top level; in the folder named by the
MINITORCHNN_DATA environment variable (then copied to the top level); downloaded from its public
URL and checked against its sha256. If all fail, the error says how to get the file.
`python -m minitorchnn.data` fetches both files.
"""
from __future__ import annotations

import hashlib
import math
import os
import random
import shutil
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class DataFile:
    name: str
    url: str
    sha256: str


FILES = {
    "names.txt": DataFile(
        "names.txt",
        "https://raw.githubusercontent.com/karpathy/makemore/master/names.txt",
        "0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d",
    ),
    "shakespeare.txt": DataFile(
        "shakespeare.txt",
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    ),
}


def project_root() -> Path:
    """The checkout's top level (where pyproject.toml is); the working directory for an installed copy."""
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").exists() else Path.cwd()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def staged(dest: Path) -> Iterator[Path]:
    """A temporary path beside dest to write into; renamed to dest when the block ends without an error,
    removed otherwise. A reader sees the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write a whole file at once (see staged)."""
    with staged(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def write_error(folder: Path) -> OSError | None:
    """Why new files cannot be written into folder (made if missing), or None when they can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".minitorchnn-probe-"):
            return None  # created and removed: the folder takes new files
    except OSError as err:
        return err


def _download(spec: DataFile, dest: Path) -> None:
    """Download into dest (a staged temporary file) and check the sha256."""
    with urllib.request.urlopen(spec.url, timeout=30) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out)
    got = sha256_of(dest)
    if got != spec.sha256:
        raise ValueError(f"{spec.name} downloaded from {spec.url} has sha256 {got}, expected {spec.sha256}")


def data_path(name: str) -> Path:
    """Path of a course data file (names.txt or shakespeare.txt), fetching it if needed.

    A top-level copy whose sha256 is wrong is never used: it is moved aside to NAME.modified and
    replaced from MINITORCHNN_DATA or a download, or refused with the way to fix it.
    """
    if name not in FILES:
        raise KeyError(f"unknown data file {name!r}; known: {sorted(FILES)}")
    spec = FILES[name]
    dest = project_root() / name
    tried, wrong = [], None
    if dest.exists():
        got = sha256_of(dest)
        if got == spec.sha256:
            return dest
        wrong = got
        tried.append(f"{dest} (there, but its sha256 is {got[:16]}..., not the course's {spec.sha256[:16]}...)")
    else:
        tried.append(f"{dest} (not there)")
    found = _from_folder(spec, dest, tried) or _from_download(spec, dest, tried)
    if found is not None:
        return found
    fix = (f"Move {dest} away (it is not the course's {name}), then download {spec.url} to {dest}"
           if wrong else f"Get it by downloading {spec.url} to {dest}")
    raise FileNotFoundError(f"Could not find {name}. Tried:\n  " + "\n  ".join(tried) + "\n"
                            f"{fix}, or set MINITORCHNN_DATA to a folder that has {name}.")


def _set_aside(dest: Path) -> None:
    """Keep a top-level file with the wrong content as NAME.modified (nothing of the user's is deleted)."""
    if dest.exists():
        aside = dest.with_name(dest.name + ".modified")
        os.replace(dest, aside)
        print(f"minitorchnn: {dest} was not the course's {dest.name} (wrong sha256); moved it to {aside}",
              file=sys.stderr)


def _from_folder(spec: DataFile, dest: Path, tried: list[str]) -> Path | None:
    folder = os.environ.get("MINITORCHNN_DATA")
    if not folder:
        tried.append("MINITORCHNN_DATA (not set)")
        return None
    source = Path(folder).expanduser() / spec.name
    if not source.is_file():
        tried.append(f"{source} (MINITORCHNN_DATA; not there)")
        return None
    got = sha256_of(source)
    if got != spec.sha256:
        tried.append(f"{source} (MINITORCHNN_DATA; its sha256 is {got[:16]}..., not the course's file)")
        return None
    with staged(dest) as tmp:
        shutil.copyfile(source, tmp)
        _set_aside(dest)
    return dest


def _from_download(spec: DataFile, dest: Path, tried: list[str]) -> Path | None:
    try:
        with staged(dest) as tmp:
            _download(spec, tmp)
            _set_aside(dest)  # only once a checked copy is ready to take its place
        return dest
    except Exception as err:  # network down, proxy, wrong bytes: all end in the same advice
        tried.append(f"{spec.url} ({type(err).__name__}: {err})")
        return None


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


def main(argv: list[str] | None = None) -> int:
    for name in FILES:
        try:
            print(f"{name}: {data_path(name)}")
        except (FileNotFoundError, ValueError) as err:
            print(err, file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
