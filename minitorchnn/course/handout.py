"""Course tools. `python -m minitorchnn.course student notebooks/ OUTDIR` writes the student versions of
the graded notebooks: each solution (between nbgrader's `### BEGIN SOLUTION` and `### END SOLUTION`
markers) becomes `# YOUR CODE HERE` / `raise NotImplementedError()`, and every output is cleared.
`python -m minitorchnn.course grade SUBMISSION... --source notebooks/` grades them (grading.py)."""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
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
    """Write the student version of every notebook in source_dir to out_dir, with the course files they read
    (results/..., experiments/...) copied beside them; returns the paths written.

    out_dir must not be source_dir or inside it: the handouts would overwrite or mix with the solutions.
    """
    from .files import files_needed, find_for

    source_dir, out_dir = Path(source_dir), Path(out_dir)
    notebooks = sorted(source_dir.glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no .ipynb notebooks in {source_dir}")
    src, out = source_dir.resolve(), out_dir.resolve()
    if out == src or src in out.parents:
        raise ValueError(f"{out_dir} is {'the source folder' if out == src else 'inside the source folder'} "
                         f"{source_dir}: the handouts would overwrite or sit among the solutions; give another folder")
    loaded = {}
    for path in notebooks:
        try:
            notebook = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
                raise ValueError("no list of cells")
            loaded[path] = (notebook, student_notebook(notebook))
        except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError) as err:
            raise ValueError(f"{path} is not a notebook this command can read: {str(err).splitlines()[0]}") from None
    needed = {name: find_for(name, source_dir) for notebook, _ in loaded.values() for name in files_needed(notebook)}
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path, (_, student) in loaded.items():
        target = out_dir / path.name
        target.write_text(json.dumps(student, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
    for name, found in needed.items():
        target = out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found, target)
        written.append(target)
    return written


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number above 0, not {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minitorchnn.course", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    student = sub.add_parser("student", help="write student versions: solutions stubbed, outputs cleared")
    student.add_argument("source", type=Path, help="folder of graded notebooks (e.g. notebooks/)")
    student.add_argument("out", type=Path, help="folder to write the student notebooks to (not inside source)")
    grader = sub.add_parser("grade", help="grade submissions with the instructor's checks")
    grader.add_argument("submissions", type=Path, nargs="+", help="the students' notebooks")
    grader.add_argument("--source", type=Path, required=True, help="folder of the instructor's notebooks")
    grader.add_argument("--json", type=Path, help="write every notebook's grades, exercise by exercise, as JSON")
    grader.add_argument("--csv", type=Path, help="write a gradebook (a row per student) to this file")
    grader.add_argument("--timeout", type=positive_int, default=300, help="seconds a cell may run (default 300)")
    grader.add_argument("--jobs", type=positive_int, default=min(2, os.cpu_count() or 1),
                        help="submissions graded at once (default: 2, or 1 on a 1-core machine)")
    grader.add_argument("--student", metavar="REGEX", help="the student's name from the submission's path: the "
                        "regex's group 'student' or its first group (default: the submission's folder name)")
    grader.add_argument("--full", action="store_true", help="full-length training instead of the short CI mode")
    args = parser.parse_args(argv)
    if args.command == "grade":
        return grade_command(args)
    try:
        written = write_student_versions(args.source, args.out)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


def _writable(path: Path, what: str) -> str | None:
    """Why the grader could not write its report to path, or None if it can."""
    if path.is_dir():
        return f"{what} {path} is a folder"
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        return f"{what} {path}: its folder {folder} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"{what} {path} is not writable"
    return None


def check_grade_arguments(args: argparse.Namespace, prepared: list) -> str | None:
    """The first reason the grade command cannot run as asked, or None; nothing has run yet."""
    for path, what in ((args.json, "--json"), (args.csv, "--csv")):
        if path is not None and (why := _writable(path, what)):
            return why
    if args.json is not None and args.csv is not None and args.json.resolve() == args.csv.resolve():
        return f"--json and --csv are the same file {args.json}"
    protected = {p.submission.resolve(): "a submission" for p in prepared}
    protected.update({p.instructor.resolve(): "an instructor's notebook" for p in prepared})
    for path, what in ((args.json, "--json"), (args.csv, "--csv")):
        if path is not None and path.resolve() in protected:
            return f"{what} {path} is {protected[path.resolve()]}: it would be overwritten"
    seen = {}
    for p in prepared:
        key = (p.student, p.instructor.name)
        if key in seen:
            return (f"{seen[key]} and {p.submission} are both {p.student}'s {p.instructor.name}: hand in one "
                    f"(or name students with --student)")
        seen[key] = p.submission
    return None


def grade_command(args: argparse.Namespace) -> int:
    """Check every argument and submission first (exit 2 with one line naming the first bad one), then grade
    them, --jobs at a time, each in its own worker process; the reports are written once every kernel is gone."""
    import time
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from . import grading
    from .sandbox import bwrap_works

    try:
        if args.student is not None:
            try:
                re.compile(args.student)
            except re.error as err:
                raise grading.GradingError(f"--student {args.student!r} is not a regular expression: {err}") from None
        index = grading.instructor_index(args.source)
        prepared = [grading.prepare(s, args.source, index=index, pattern=args.student) for s in args.submissions]
    except grading.GradingError as err:
        print(f"error: {grading.clean(err)}".split("\n")[0], file=sys.stderr)
        return 2
    if why := check_grade_arguments(args, prepared):
        print(f"error: {grading.clean(why)}", file=sys.stderr)
        return 2
    sandboxed = bwrap_works()
    print(f"grading {len(prepared)} notebook(s), {args.jobs} at a time, "
          f"{'each in a bubblewrap sandbox' if sandboxed else 'NOT SANDBOXED (bubblewrap is unavailable)'}",
          flush=True)
    start, grades = time.monotonic(), [None] * len(prepared)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(_grade_in_worker, p, args): k for k, p in enumerate(prepared)}
        for done, future in enumerate(as_completed(futures), 1):
            k = futures[future]
            grades[k] = future.result()
            g = grades[k]
            print(grading.clean(f"[{done}/{len(prepared)}] {g.notebook}: {g.points:g}/{g.max_points:g} points in "
                                f"{g.seconds:.0f} s"), flush=True)
            print(grading.table(g), flush=True)
    print(f"graded {len(grades)} notebook(s) in {time.monotonic() - start:.0f} s", flush=True)
    if args.json:
        grading.write_json(grades, args.json)
    if args.csv:
        grading.write_csv(grades, args.csv)
    return 0


def _grade_in_worker(prepared, args: argparse.Namespace):
    """Grade one submission in a child process (`python -m minitorchnn.course.worker`): a crash costs only it."""
    import subprocess
    import tempfile

    from . import grading

    with tempfile.TemporaryDirectory(prefix="minitorchnn-worker-") as folder:
        job, result = Path(folder) / "job.json", Path(folder) / "grade.json"
        job.write_text(json.dumps({"submission": str(prepared.submission), "instructor": str(prepared.instructor),
                                   "source": str(args.source), "student": prepared.student,
                                   "timeout": args.timeout, "full": args.full, "result": str(result)}))
        out = subprocess.run([sys.executable, "-m", "minitorchnn.course.worker", str(job)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if out.returncode == 0 and result.exists():
            return grading.grade_from_dict(json.loads(result.read_text()))
    why = grading.clean((out.stderr or b"").decode(errors="replace").strip().splitlines()[-1:] or
                        [f"exit code {out.returncode}"])
    return grading.failed_grade(prepared, f"the grader's worker failed: {why}")
