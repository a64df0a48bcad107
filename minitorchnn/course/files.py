"""The committed files a course notebook reads (results/*.csv, experiments/*.toml), found wherever it runs.

`course_file("results/nanogpt_defaults.csv")` looks, in order: in the repository the package was installed
from (an editable install from a checkout), beside the notebook (where `python -m minitorchnn.course
student` copies what a handout needs, and where the grader puts it), then one folder up (a notebook in the
checkout's notebooks/). A notebook that uses it runs from any folder.
"""
from __future__ import annotations

import re
from pathlib import Path

FOLDERS = ("results", "experiments")
# a file name in a notebook's code: "results/x.csv" or 'experiments/y.toml'
REFERENCE = re.compile(r"""["'](?:\.\./)?((?:results|experiments)/[\w.-]+\.\w+)["']""")


def repository_root() -> Path | None:
    """The checkout the package is installed from (editable install), or None for an installed copy."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and any((root / f).is_dir() for f in FOLDERS) else None


def course_file(relative: str | Path) -> Path:
    """The path of a committed course file such as "results/nanogpt_defaults.csv"; FileNotFoundError if none."""
    relative = Path(relative)
    root = repository_root()
    candidates = ([root / relative] if root else []) + [Path.cwd() / relative, Path.cwd().parent / relative]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{relative}: not found in {', '.join(str(c.parent) for c in candidates)}; "
                            f"`python -m minitorchnn.course student` copies it beside the handout")


def files_needed(notebook: dict) -> list[str]:
    """The course files (results/..., experiments/...) a notebook's code names, in order of first use."""
    names: dict[str, None] = {}
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            names.update(dict.fromkeys(REFERENCE.findall(source)))
    return list(names)


def find_for(relative: str, source_dir: Path) -> Path:
    """A course file for the notebooks in source_dir: beside them, one folder up, or in the repository."""
    for candidate in (Path(source_dir) / relative, Path(source_dir).parent / relative):
        if candidate.is_file():
            return candidate
    root = repository_root()
    if root and (root / relative).is_file():
        return root / relative
    raise FileNotFoundError(f"{relative}: not in {source_dir}, {Path(source_dir).parent} or the repository")
