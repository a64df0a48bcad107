"""Text corpora for the sequence models: what every corpus offers (TokenCorpus), Tiny Shakespeare in memory
(TextDataset), and any text file encoded once to a .bin of token ids and read back through numpy.memmap.

A corpus larger than memory cannot be held as one tensor. As large-corpus training does, the text is
read in chunks, each chunk's token ids are appended to FILE.char.bin (or FILE.byte.bin), and batches
are sliced from that file through numpy.memmap: the operating system pages in only the windows a batch
touches. Character level: the vocabulary is every character in the file (a first pass finds them).
Byte level: the vocabulary is the 256 byte values, so any file works, in any language or encoding.
The .bin is encoded again when the file's content (its sha256) changes, or when the .bin itself is not
what was written (its own sha256, kept in the .json, differs); a damaged .json beside it is rebuilt; a
folder we may not write to sends both to a cache folder instead.
"""
from __future__ import annotations

import codecs
import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .vocab import CharVocab
from .files import cache_folder, data_path
from ..fileio import sha256_of, special_kind, staged, write_atomic, write_error

CHUNK_CHARS = 1 << 22  # read 4 MB at a time: memory stays flat whatever the file size
FORMAT = 3  # 3: the .bin's own sha256 is checked too; 2: the source's sha256; 1: size and modification time


class TokenCorpus:
    """What every text corpus offers: a vocabulary, and random windows (x, y) of its train or val split."""

    vocab: CharVocab

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        return self.vocab.encode(text)

    def decode(self, ids) -> str:
        return self.vocab.decode(ids)

    def split_length(self, split: str) -> int:
        raise NotImplementedError

    def windows(self, split: str, ix: Tensor, length: int, device) -> Tensor:
        """The token windows [i, i + length) for every i in ix, as a (len(ix), length) long tensor on device."""
        raise NotImplementedError

    def get_batch(self, split: str, batch_size: int, block_size: int, generator: torch.Generator | None = None,
                  device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
        """x (batch_size, block_size) and y, the same windows shifted by one token."""
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        n = self.split_length(split)
        if n <= block_size:
            raise ValueError(f"the {split} split has {n} tokens, too few for block_size={block_size}")
        ix = torch.randint(n - block_size, (batch_size,), generator=generator,
                           device=generator.device if generator is not None else "cpu")
        window = self.windows(split, ix, block_size + 1, device)  # (B, T + 1)
        return window[:, :-1], window[:, 1:]  # (B, T), (B, T)


class TextDataset(TokenCorpus):
    """A character-level corpus in memory: 1-D long tensors train (first 90%) and val."""

    def __init__(self, text: str, train_fraction: float = 0.9) -> None:
        self.vocab = CharVocab.from_text(text)
        data = torch.tensor(self.vocab.encode(text), dtype=torch.long)
        n = int(train_fraction * len(data))
        self.train, self.val = data[:n], data[n:]
        self._on_device: dict[tuple[str, str], Tensor] = {}

    def split_length(self, split: str) -> int:
        return len(getattr(self, split))

    def windows(self, split: str, ix: Tensor, length: int, device) -> Tensor:
        key = (split, str(device))
        if key not in self._on_device:  # copy each split to a device once, not every batch
            self._on_device[key] = getattr(self, split).to(device)
        data = self._on_device[key]
        offsets = ix[:, None] + torch.arange(length, device=ix.device)  # (B, length)
        return data[offsets.to(data.device)]

    def __repr__(self) -> str:
        return f"TextDataset(vocab_size={self.vocab_size}, train={len(self.train):,}, val={len(self.val):,})"


def shakespeare_dataset() -> TextDataset:
    """Tiny Shakespeare: 65 characters, 1,003,854 training and 111,540 validation tokens."""
    return TextDataset(data_path("shakespeare.txt").read_text(encoding="utf-8"))


class ByteVocab:
    """The 256 byte values as the vocabulary: text <-> its UTF-8 bytes."""

    itos = None  # no character table: any byte is an id

    def __len__(self) -> int:
        return 256

    @property
    def vocab_size(self) -> int:
        return 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids) -> str:
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        return bytes(ids).decode("utf-8", errors="replace")  # a window may cut a character in half

    def __repr__(self) -> str:
        return "ByteVocab(256 byte values)"


def _chunks(path: Path, level: str):
    """The file as a stream of numpy arrays of code points (char) or bytes (byte)."""
    with open(path, "rb") as f:
        decoder = codecs.getincrementaldecoder("utf-8")()  # a character split between chunks is kept whole
        offset = 0
        while True:
            raw = f.read(CHUNK_CHARS)
            if level == "byte":
                if not raw:
                    return
                yield np.frombuffer(raw, dtype=np.uint8)
                continue
            try:
                text = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as err:
                raise ValueError(f"{path} is not UTF-8 text (byte {offset + max(err.start, 0):,} cannot be "
                                 f"decoded); read it byte by byte with --level byte (level='byte')") from None
            offset += len(raw)
            if text:
                yield np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # one code point per character
            if not raw:
                return


def _writable(folder: Path) -> bool:
    return write_error(folder) is None


def _read_meta(meta_path: Path) -> dict | None:
    """The .json beside a .bin, or None when it is missing or damaged (then the corpus is encoded again)."""
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def encode_corpus(path: str | Path, level: str = "char", out: str | Path | None = None) -> Path:
    """Encode a text file to token ids in OUT (default FILE.LEVEL.bin) with a .json beside it; reused
    while the file's sha256 is the one recorded there and the .bin's own sha256 is what was written."""
    path = Path(path)
    if level not in ("char", "byte"):
        raise ValueError(f"level must be 'char' or 'byte', got {level!r}")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a text file")
    kind = special_kind(path)
    if kind is not None:
        raise ValueError(f"{path} is {kind}, not a regular text file (a corpus is read twice: give a file)")
    if not path.is_file():
        raise FileNotFoundError(f"no text file {path}")
    source = {"name": path.name, "sha256": sha256_of(path)}
    out = Path(out) if out is not None else _default_out(path, level, source["sha256"])
    if _up_to_date(out, source, level):
        return out  # encoded before, from this very content, and the .bin is as it was written
    chars, dtype, lookup = _vocabulary(path, level)
    n_tokens = 0
    with staged(out) as tmp, open(tmp, "wb") as f:  # whole or not at all
        for codes in _chunks(path, level):  # second pass: write the ids
            ids = codes if lookup is None else lookup[codes]
            f.write(ids.astype(dtype, copy=False).tobytes())
            n_tokens += len(ids)
        if n_tokens == 0:
            raise ValueError(f"{path} is empty: nothing to train on")
    meta = {"format": FORMAT, "level": level, "dtype": np.dtype(dtype).name, "tokens": n_tokens,
            "chars": chars, "source": source, "sha256": sha256_of(out)}
    write_atomic(out.with_suffix(".json"), json.dumps(meta))
    return out


def _default_out(path: Path, level: str, sha256: str) -> Path:
    """FILE.LEVEL.bin beside the text, or in the cache folder when the text's folder is read-only."""
    out = path.with_name(f"{path.name}.{level}.bin")
    if _writable(out.parent):
        return out
    out = cache_folder() / f"{sha256[:16]}-{path.name}.{level}.bin"
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _up_to_date(out: Path, source: dict, level: str) -> bool:
    """Whether out holds the encoding of source at level: recorded in its .json, and its own sha256 matches."""
    meta = _read_meta(out.with_suffix(".json"))
    return (out.is_file() and meta is not None and meta.get("format") == FORMAT and meta.get("source") == source
            and meta.get("level") == level and meta.get("sha256") == sha256_of(out))


def _vocabulary(path: Path, level: str):
    """(chars, dtype, lookup): the characters of the file, the id type, and code point -> id (char level)."""
    if level == "byte":
        return None, np.uint8, None
    seen: set[int] = set()
    for codes in _chunks(path, level):  # first pass: which characters occur
        seen.update(np.unique(codes).tolist())
    if not seen:
        raise ValueError(f"{path} is empty: nothing to train on")
    chars = sorted(chr(c) for c in seen)
    dtype = np.uint16 if len(chars) <= 1 << 16 else np.uint32
    lookup = np.zeros(max(seen) + 1, dtype=dtype)  # code point -> id, one vectorised gather per chunk
    lookup[[ord(c) for c in chars]] = np.arange(len(chars), dtype=dtype)
    return chars, dtype, lookup


class MemmapTextDataset(TokenCorpus):
    """Token ids in a .bin file, read through numpy.memmap: the first 90% train, the rest val.

    A TokenCorpus like TextDataset, so RegisterModel.train_text and estimate_loss work on it unchanged.
    """

    def __init__(self, bin_path: str | Path, train_fraction: float = 0.9) -> None:
        self.bin_path = Path(bin_path)
        meta = _read_meta(self.bin_path.with_suffix(".json"))
        if meta is None:
            raise ValueError(f"{self.bin_path.with_suffix('.json')} is missing or damaged; encode the corpus "
                             f"again with text_dataset(FILE)")
        self.level, self.n_tokens = meta["level"], meta["tokens"]
        self.vocab = ByteVocab() if meta["chars"] is None else CharVocab(meta["chars"])
        self.tokens = np.memmap(self.bin_path, dtype=np.dtype(meta["dtype"]), mode="r")
        if len(self.tokens) != self.n_tokens:
            raise ValueError(f"{self.bin_path} holds {len(self.tokens)} tokens, its .json says {self.n_tokens}; "
                             f"delete both to encode the corpus again")
        self.split_at = int(train_fraction * self.n_tokens)

    def split(self, name: str) -> np.ndarray:
        if name not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {name!r}")
        return self.tokens[:self.split_at] if name == "train" else self.tokens[self.split_at:]

    def split_length(self, split: str) -> int:
        return len(self.split(split))

    def windows(self, split: str, ix: Tensor, length: int, device) -> Tensor:
        data = self.split(split)  # read from the file: only these windows are paged in
        rows = np.stack([data[i:i + length] for i in ix.tolist()]).astype(np.int64)  # (B, length)
        return torch.from_numpy(rows).to(device)

    def __repr__(self) -> str:
        return (f"MemmapTextDataset({self.bin_path.name}, {self.level} level, vocab_size={self.vocab_size}, "
                f"train={self.split_at:,}, val={self.n_tokens - self.split_at:,})")


def text_dataset(path: str | Path, level: str = "char", train_fraction: float = 0.9) -> MemmapTextDataset:
    """Any text file as a dataset for GPT/WaveGPT: encoded once to a .bin beside it, then memory-mapped."""
    return MemmapTextDataset(encode_corpus(path, level), train_fraction)
