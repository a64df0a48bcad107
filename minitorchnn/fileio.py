"""Writing files safely: every writer in the package goes through here.

A file is written to a temporary name beside it and renamed into place, so a reader (or a crash)
sees the old file or the new one, never half of one. A write that fails (a full disk, a folder we may
not write to) is a WriteError naming the file and the cause; new files get the mode the umask gives.
"""
from __future__ import annotations

import hashlib
import os
import stat
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


class WriteError(OSError):
    """A file that could not be written; the message names it and the cause (e.g. no space left on device)."""

    def __init__(self, dest: Path, err: OSError) -> None:
        super().__init__(err.errno, f"{dest}: could not write it ({err.strerror or err}); any file already "
                                    f"there was left as it was")

    def __str__(self) -> str:
        return self.strerror


def new_file_mode(dest: Path) -> int:
    """The mode dest should get: its present mode if it exists, else what open() gives under the umask."""
    if dest.exists():
        return stat.S_IMODE(dest.stat().st_mode)
    umask = os.umask(0)  # reading the umask means setting it: put it straight back
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def staged(dest: Path) -> Iterator[Path]:
    """A temporary path beside dest to write into; renamed to dest when the block ends without an error,
    removed otherwise. A reader sees the old file or the new one, never half of one. An OSError while
    writing becomes a WriteError naming dest."""
    dest = Path(dest)
    try:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        os.fchmod(fd, new_file_mode(dest))  # mkstemp makes 0600 files whatever the umask
        os.close(fd)
    except OSError as err:
        raise WriteError(dest, err) from None
    try:
        yield Path(tmp)
        os.replace(tmp, dest)
    except WriteError:
        raise
    except OSError as err:
        raise WriteError(dest, err) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write a whole file at once, flushed to the disk (see staged)."""
    with staged(path) as tmp, open(tmp, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())  # a full disk may only show here


def write_error(folder: Path) -> OSError | None:
    """Why new files cannot be written into folder (made if missing), or None when they can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".minitorchnn-probe-"):
            return None  # created and removed: the folder takes new files
    except OSError as err:
        return err


def special_kind(path: Path) -> str | None:
    """What path is when it exists but is not a regular file ("a folder", "a FIFO (named pipe)", ...), else None."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    kinds = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")]
    return next((what for test, what in kinds if test(mode)), None)
