"""The course's data files, names.txt and shakespeare.txt: found, checked by sha256, fetched if missing.

A data file is looked for, in order: at the project's top level (the repository ships both); in the
folder named by the MINITORCHNN_DATA environment variable (copied to the top level, or read where it is
when the checkout is read-only); in the cache folder; downloaded from its public URL (to the top level,
or to the cache folder) and checked against its sha256. If all fail, the error says how to get it.
`python -m minitorchnn.data` checks (or fetches) both files.
"""
from __future__ import annotations

import os
import shutil
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..fileio import sha256_of, staged, write_error

PACKAGE_DIR = Path(__file__).resolve().parent.parent


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


def cache_folder() -> Path:
    """Where files go that the checkout cannot take (it is read-only): MINITORCHNN_CACHE, else
    $XDG_CACHE_HOME/minitorchnn, else ~/.cache/minitorchnn."""
    if os.environ.get("MINITORCHNN_CACHE"):
        return Path(os.environ["MINITORCHNN_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "minitorchnn"


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
    replaced from MINITORCHNN_DATA or a download, or refused with the way to fix it. A read-only
    checkout reads MINITORCHNN_DATA where it is and keeps a download in the cache folder.
    """
    if name not in FILES:
        raise KeyError(f"unknown data file {name!r}; known: {sorted(FILES)}")
    spec = FILES[name]
    dest = project_root() / name
    got = sha256_of(dest) if dest.is_file() else None
    if got == spec.sha256:
        return dest
    tried = [f"{dest} (there, but its sha256 is {got[:16]}..., not the course's {spec.sha256[:16]}...)" if got
             else f"{dest} (not there)"]
    if write_error(dest.parent) is not None:  # a read-only checkout: what is fetched goes to the cache
        dest = cache_folder() / name
        if _is_course_file(dest, spec):
            return dest
    found = _from_folder(spec, dest, tried) or _from_download(spec, dest, tried)
    if found is not None:
        return found
    fix = (f"Move {dest} away (it is not the course's {name}), then download {spec.url} to {dest}"
           if got else f"Get it by downloading {spec.url} to {dest}")
    raise FileNotFoundError(f"Could not find {name}. Tried:\n  " + "\n  ".join(tried) + "\n"
                            f"{fix}, or set MINITORCHNN_DATA to a folder that has {name}.")


def _is_course_file(path: Path, spec: DataFile) -> bool:
    return path.is_file() and sha256_of(path) == spec.sha256


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
    if dest.parent == cache_folder():  # the checkout is read-only: read it where it is
        return source
    with staged(dest) as tmp:
        shutil.copyfile(source, tmp)
        _set_aside(dest)
    return dest


def _from_download(spec: DataFile, dest: Path, tried: list[str]) -> Path | None:
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)  # the cache folder may not exist yet
        with staged(dest) as tmp:
            _download(spec, tmp)
            _set_aside(dest)  # only once a checked copy is ready to take its place
        return dest
    except Exception as err:  # network down, proxy, wrong bytes: all end in the same advice
        tried.append(f"{spec.url} ({type(err).__name__}: {err})")
        return None


def main(argv: list[str] | None = None) -> int:
    for name in FILES:
        try:
            print(f"{name}: {data_path(name)}")
        except (FileNotFoundError, ValueError) as err:
            print(err, file=sys.stderr)
            return 1
    return 0
