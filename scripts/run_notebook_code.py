"""Run a notebook's code cells top to bottom in one Python process, where Jupyter is not installed.

For a bare GPU machine (a cluster node, a cloud box) that has torch but no Jupyter: it runs every code cell
in order in one namespace, as a fresh kernel would, prints each cell's output and time, and checks the cells
that nbval checks (tag `nbval-check-output`) against the committed outputs, after notebooks/sanitize.cfg.
The committed outputs are full-length CPU runs, so with CI unset a mismatch means a device-dependent output.

    MPLBACKEND=Agg python scripts/run_notebook_code.py notebooks/01_mlp.ipynb

One notebook per process, as one fresh kernel per notebook. `--cells 1,2,31` runs only those code cells
(the setup cells and one section, say). Exit status 1 if a cell raised or a checked
output differs. It writes nothing back into the notebook.
"""
from __future__ import annotations

import argparse
import ast
import configparser
import contextlib
import functools
import io
import json
import os
import re
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Tee(io.TextIOBase):
    """Writes go to the terminal and into a buffer (the cell's output)."""

    def __init__(self, stream) -> None:
        self.stream, self.buffer = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.stream.write(text)
        return self.buffer.write(text)

    def flush(self) -> None:
        self.stream.flush()


@functools.cache
def sanitizers() -> list[tuple[re.Pattern, str]]:
    """notebooks/sanitize.cfg's replacements, read once."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "notebooks" / "sanitize.cfg")
    return [(re.compile(cfg[section]["regex"]), cfg[section]["replace"]) for section in cfg.sections()]


def sanitize(text: str) -> str:
    """Apply the replacements, as nbval does before comparing."""
    for pattern, replacement in sanitizers():
        text = pattern.sub(replacement, text)
    return text


def committed_text(cell: dict) -> str:
    """The stdout and plain-text results nbval compares, as committed."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream" and out["name"] == "stdout":
            parts.append("".join(out["text"]))
        elif out["output_type"] == "execute_result":
            parts.append("".join(out["data"].get("text/plain", "")) + "\n")
    return "".join(parts)


def run_cell(source: str, namespace: dict, name: str) -> None:
    """exec the cell; a final expression is printed as Jupyter would show it."""
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, name, "exec"), namespace)
    if last is not None:
        value = eval(compile(ast.Expression(last.value), name, "eval"), namespace)
        if value is not None:
            print(repr(value))


def run_notebook(path: Path, only: set[int] | None = None) -> tuple[bool, float]:
    import matplotlib.pyplot as plt

    cells = json.loads(path.read_text())["cells"]
    namespace: dict = {"__name__": "__main__"}
    ok, start = True, time.perf_counter()
    cwd = os.getcwd()
    os.chdir(path.parent)  # as nbval does: the kernel starts in the notebook's folder
    try:
        for i, cell in enumerate(cells):
            if cell["cell_type"] != "code" or (only is not None and i not in only):
                continue
            print(f"--- {path.name} cell {i} ---", flush=True)
            tee, cell_start = Tee(sys.stdout), time.perf_counter()
            try:
                with contextlib.redirect_stdout(tee):
                    run_cell("".join(cell["source"]), namespace, f"{path.name}[{i}]")
            except Exception:
                traceback.print_exc()
                print(f"FAILED: {path.name} cell {i}", flush=True)
                return False, time.perf_counter() - start
            plt.close("all")
            print(f"[cell {i}: {time.perf_counter() - cell_start:.1f} s]", flush=True)
            if "nbval-check-output" in cell.get("metadata", {}).get("tags", []):
                want, got = sanitize(committed_text(cell)), sanitize(tee.buffer.getvalue())
                if want != got:
                    ok = False
                    print(f"OUTPUT DIFFERS: {path.name} cell {i}\n--- committed\n{want}--- this run\n{got}", flush=True)
    finally:
        os.chdir(cwd)
    return ok, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--cells", help="comma-separated cell numbers (0-based, all cells counted) to run alone")
    args = parser.parse_args()
    only = {int(n) for n in args.cells.split(",")} if args.cells else None
    ok, seconds = run_notebook(args.notebook.resolve(), only)
    print(f"{args.notebook}: {'ok' if ok else 'FAILED or an output differs'}, {seconds:.0f} s first to last cell")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
