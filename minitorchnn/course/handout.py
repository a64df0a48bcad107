"""Course tools. `python -m minitorchnn.course student notebooks/ OUTDIR` writes the student versions of
the graded notebooks: each solution (between nbgrader's `### BEGIN SOLUTION` and `### END SOLUTION`
markers) becomes `# YOUR CODE HERE` / `raise NotImplementedError()`, and every output is cleared.
`python -m minitorchnn.course grade SUBMISSION... --source notebooks/` grades them (grading.py)."""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
SOLUTION = re.compile(r"^([ \t]*)### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*### END SOLUTION[^\n]*(\n|$)", re.M | re.S)


def cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def strip_solutions(source: str) -> str:
    """Replace every marked solution by a stub at the same indentation."""
    if source.count(BEGIN) != source.count(END):
        raise ValueError(f"unbalanced solution markers in cell:\n{source}")

    def stub(match: re.Match) -> str:
        indent = match.group(1)
        return f"{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError(){match.group(2)}"

    return SOLUTION.sub(stub, source)


def student_notebook(notebook: dict) -> dict:
    """A copy of the notebook with solutions stubbed and all outputs cleared."""
    out = json.loads(json.dumps(notebook))
    for cell in out["cells"]:
        if cell["cell_type"] != "code":
            continue
        cell["source"] = strip_solutions(cell_source(cell)).splitlines(keepends=True)
        cell["outputs"] = []
        cell["execution_count"] = None
    return out


def write_student_versions(source_dir: Path, out_dir: Path) -> list[Path]:
    """Write the student version of every notebook in source_dir to out_dir; returns the paths written."""
    notebooks = sorted(Path(source_dir).glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no .ipynb notebooks in {source_dir}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        target = out_dir / path.name
        target.write_text(json.dumps(student_notebook(notebook), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minitorchnn.course", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    student = sub.add_parser("student", help="write student versions: solutions stubbed, outputs cleared")
    student.add_argument("source", type=Path, help="folder of graded notebooks (e.g. notebooks/)")
    student.add_argument("out", type=Path, help="folder to write the student notebooks to")
    grader = sub.add_parser("grade", help="grade submissions with the instructor's checks")
    grader.add_argument("submissions", type=Path, nargs="+", help="the students' notebooks")
    grader.add_argument("--source", type=Path, required=True, help="folder of the instructor's notebooks")
    grader.add_argument("--json", type=Path, help="write the grades as JSON to this file")
    grader.add_argument("--csv", type=Path, help="write a gradebook (a row per submission) to this file")
    grader.add_argument("--timeout", type=int, default=300, help="seconds a cell may run (default 300)")
    grader.add_argument("--full", action="store_true", help="full-length training instead of the short CI mode")
    args = parser.parse_args(argv)
    if args.command == "grade":
        return grade_command(args)
    try:
        written = write_student_versions(args.source, args.out)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


def grade_command(args: argparse.Namespace) -> int:
    """Check every submission first (exit 2 naming the first bad one), then grade them one by one."""
    from . import grading

    try:
        prepared = [grading.prepare(submission, args.source) for submission in args.submissions]
    except grading.GradingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    grades = []
    for submission, ready in zip(args.submissions, prepared):
        grades.append(grading.grade(submission, args.source, timeout=args.timeout, full=args.full, prepared=ready))
        print(grading.table(grades[-1]), flush=True)
    if args.json:
        grading.write_json(grades, args.json)
    if args.csv:
        grading.write_csv(grades, args.csv)
    return 0
