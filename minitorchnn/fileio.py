"""Writing files safely: every writer in the package goes through here.

A file is written to a temporary name beside it and renamed into place, so a reader (or a crash)
sees the old file or the new one, never half of one.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
