"""Any text file as a training corpus: encoded once to a .bin of token ids, read back through numpy.memmap.

A corpus larger than memory cannot be held as one tensor. As large-corpus training does, the text is
read in chunks, each chunk's token ids are appended to FILE.char.bin (or FILE.byte.bin), and batches
are sliced from that file through numpy.memmap: the operating system pages in only the windows a batch
touches. Character level: the vocabulary is every character in the file (a first pass finds them).
Byte level: the vocabulary is the 256 byte values, so any file works, in any language or encoding.
"""
from __future__ import annotations

import codecs
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .data import CharVocab, TokenCorpus

CHUNK_CHARS = 1 << 22  # read 4 MB at a time: memory stays flat whatever the file size
FORMAT = 1


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
        while True:
            raw = f.read(CHUNK_CHARS)
            if level == "byte":
                if not raw:
                    return
                yield np.frombuffer(raw, dtype=np.uint8)
                continue
            text = decoder.decode(raw, final=not raw)
            if text:
                yield np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # one code point per character
            if not raw:
                return


def encode_corpus(path: str | Path, level: str = "char", out: str | Path | None = None) -> Path:
    """Encode a text file to token ids in OUT (default FILE.LEVEL.bin) with a .json beside it; reused
    while the source file keeps its size and modification time."""
    path = Path(path)
    if level not in ("char", "byte"):
        raise ValueError(f"level must be 'char' or 'byte', got {level!r}")
    if not path.is_file():
        raise FileNotFoundError(f"no text file {path}")
    out = Path(out) if out is not None else path.with_name(f"{path.name}.{level}.bin")
    meta_path = out.with_suffix(".json")
    stat = path.stat()
    source = {"name": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if out.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("format") == FORMAT and meta.get("source") == source and meta.get("level") == level:
            return out  # encoded before, from this very file
    if level == "byte":
        chars, dtype, lookup = None, np.uint8, None
    else:
        seen: set[int] = set()
        for codes in _chunks(path, level):  # first pass: which characters occur
            seen.update(np.unique(codes).tolist())
        if not seen:
            raise ValueError(f"{path} is empty: nothing to train on")
        chars = sorted(chr(c) for c in seen)
        dtype = np.uint16 if len(chars) <= 1 << 16 else np.uint32
        lookup = np.zeros(max(seen) + 1, dtype=dtype)  # code point -> id, one vectorised gather per chunk
        lookup[[ord(c) for c in chars]] = np.arange(len(chars), dtype=dtype)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    n_tokens = 0
    try:
        with open(tmp, "wb") as f:
            for codes in _chunks(path, level):  # second pass: write the ids
                ids = codes if lookup is None else lookup[codes]
                f.write(ids.astype(dtype, copy=False).tobytes())
                n_tokens += len(ids)
        if n_tokens == 0:
            raise ValueError(f"{path} is empty: nothing to train on")
        os.replace(tmp, out)  # whole or not at all
    finally:
        if tmp.exists():
            tmp.unlink()
    meta = {"format": FORMAT, "level": level, "dtype": np.dtype(dtype).name, "tokens": n_tokens,
            "chars": chars, "source": source}
    meta_path.write_text(json.dumps(meta))
    return out


class MemmapTextDataset(TokenCorpus):
    """Token ids in a .bin file, read through numpy.memmap: the first 90% train, the rest val.

    A TokenCorpus like TextDataset, so RegisterModel.train_text and estimate_loss work on it unchanged.
    """

    def __init__(self, bin_path: str | Path, train_fraction: float = 0.9) -> None:
        self.bin_path = Path(bin_path)
        meta = json.loads(self.bin_path.with_suffix(".json").read_text())
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
