"""Grade submissions with the instructor's checks: `python -m minitorchnn.course grade SUBMISSION... --source DIR`.

An exercise is a solution cell (nbgrader metadata `solution: true`, code between `### BEGIN SOLUTION` and
`### END SOLUTION`) followed by a check cell (`grade: true`, its `points`). Grading runs the *instructor's*
notebook in a fresh kernel with the student's code put into its solution regions: whatever the student did
to the other cells, checks included, changes nothing. A check that raises scores 0 with its message; the
other exercises still run.
"""
from __future__ import annotations

import ast
import copy
import csv
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from unittest import mock

from .handout import BEGIN, END, SOLUTION, cell_source, strip_solutions

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class GradingError(ValueError):
    """A submission that cannot be graded: not a notebook, no instructor counterpart, markers that differ."""


@dataclass
class ExerciseResult:
    name: str
    points: float
    max_points: float
    passed: bool
    message: str = ""


@dataclass
class Grade:
    notebook: str
    points: float = 0.0
    max_points: float = 0.0
    exercises: list[ExerciseResult] = field(default_factory=list)


def _nbgrader(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def exercises(notebook: dict) -> list[tuple[int, int]]:
    """(solution cell index, check cell index) of every exercise: a solution cell and the check after it."""
    cells = notebook["cells"]
    pairs = []
    for i, cell in enumerate(cells):
        if _nbgrader(cell).get("solution") and cell["cell_type"] == "code":
            check = next((j for j in range(i + 1, len(cells)) if cells[j]["cell_type"] == "code"), None)
            if check is None or not _nbgrader(cells[check]).get("grade"):
                raise GradingError(f"solution cell {_nbgrader(cell).get('grade_id')} has no check cell after it")
            pairs.append((i, check))
    return pairs


def load_notebook(path: Path) -> dict:
    try:
        notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise GradingError(f"{path} is not a notebook: {err}") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise GradingError(f"{path} is not a notebook: no list of cells")
    return notebook


def student_code(template: str, submitted: str) -> list[str] | None:
    """The student's code for each solution region of a cell, or None if the cell was changed outside them.

    template is the instructor's cell with its regions stubbed; the student's cell must keep everything
    outside the regions (a submission made from the instructor's own notebook keeps its markers: dropped).
    """
    submitted = "\n".join(line for line in submitted.split("\n") if line.strip() not in (BEGIN, END))
    stub = re.compile(r"^[ \t]*# YOUR CODE HERE\n[ \t]*raise NotImplementedError\(\)\n?", re.M)
    fixed = stub.split(template)
    pattern = "(.*?)".join(re.escape(part) for part in fixed)
    match = re.fullmatch(pattern, submitted, re.S)
    return list(match.groups()) if match else None


def fill_regions(instructor: str, code: list[str]) -> str:
    """The instructor's cell with region k's solution replaced by code[k] (markers kept)."""
    regions = iter(code)

    def fill(match: re.Match) -> str:  # the region course.strip_solutions finds, with the student's code inside
        lines = match.group(0).rstrip("\n").split("\n")
        return "\n".join([lines[0], next(regions).rstrip("\n"), lines[-1]]) + match.group(2)

    return SOLUTION.sub(fill, instructor)


def graded_notebook(instructor: dict, submission: dict, name: str) -> tuple[dict, dict[str, str]]:
    """The instructor's notebook with the student's solutions in it; a note for each cell used whole."""
    submitted = {_nbgrader(c).get("grade_id"): cell_source(c) for c in submission["cells"]
                 if _nbgrader(c).get("solution")}
    solutions = [i for i, _ in exercises(instructor)]
    expected = [_nbgrader(instructor["cells"][i]).get("grade_id") for i in solutions]
    if sorted(submitted, key=str) != sorted(expected, key=str):
        raise GradingError(f"{name}: its solution cells {sorted(submitted, key=str)} do not match the instructor's "
                           f"{sorted(expected, key=str)}")
    graded, notes = copy.deepcopy(instructor), {}
    for i in solutions:
        cell = graded["cells"][i]
        source, grade_id = cell_source(cell), _nbgrader(cell)["grade_id"]
        if source.count(BEGIN) != submitted[grade_id].count(BEGIN) and BEGIN in submitted[grade_id]:
            raise GradingError(f"{name}: cell {grade_id} has {submitted[grade_id].count(BEGIN)} solution markers, "
                               f"the instructor's has {source.count(BEGIN)}")
        code = student_code(strip_solutions(source), submitted[grade_id])
        if code is None:  # changed outside the regions: grade the cell as the student wrote it
            cell["source"] = submitted[grade_id]
            notes[grade_id] = "changed outside its solution region: graded as written"
        else:
            cell["source"] = fill_regions(source, code)
    return graded, notes


def defined_names(source: str) -> set[str]:
    """Names a cell defines at its top level (functions, classes, assignments)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def used_names(source: str) -> set[str]:
    """Names a cell reads (calls included)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _error(cell: dict, timeout: int) -> dict | None:
    """The cell's error output, if any; the interrupt that ends a cell past its timeout is named as such."""
    error = next((o for o in cell.get("outputs", []) if o["output_type"] == "error"), None)
    if error is not None and error["ename"] in ("KeyboardInterrupt", "Timeout"):
        return {**error, "ename": "Timeout", "evalue": f"the cell ran for more than {timeout} s"}
    return error


def prepare(submission: Path, source_dir: Path) -> tuple[dict, dict[str, str], Path]:
    """The notebook to run for a submission, its notes, and the folder it runs in; GradingError if it can't be."""
    notebook = load_notebook(submission)
    instructor_path = Path(source_dir) / Path(submission).name
    if not instructor_path.exists():
        raise GradingError(f"{submission}: no instructor notebook {instructor_path}")
    graded, notes = graded_notebook(load_notebook(instructor_path), notebook, str(submission))
    return graded, notes, instructor_path.parent.resolve()


def grade(submission: Path, source_dir: Path, timeout: int = 120, full: bool = False,
          prepared: tuple[dict, dict[str, str], Path] | None = None) -> Grade:
    """Run the instructor's notebook with the submission's solutions and score every check.

    prepared: what prepare() returned for this submission, when the caller checked it already.
    """
    import nbformat
    from nbclient import NotebookClient

    graded, notes, folder = prepared or prepare(submission, source_dir)
    graded = nbformat.reads(json.dumps(graded), as_version=4)  # what nbclient runs; it writes the outputs in
    env = {"CI": "false" if full else "true", "MINITORCHNN_PROGRESS": "0"}
    with mock.patch.dict(os.environ, env):  # the kernel inherits this process's environment; restored after
        NotebookClient(graded, timeout=timeout, kernel_name="python3", allow_errors=True, interrupt_on_timeout=True,
                       resources={"metadata": {"path": str(folder)}}).execute()
    result, failed = Grade(notebook=str(submission)), {}  # the path: it names the student
    for solution, check in exercises(graded):
        name = _nbgrader(graded["cells"][solution])["grade_id"]
        max_points = float(_nbgrader(graded["cells"][check]).get("points", 0))
        check_error, solution_error = (_error(graded["cells"][i], timeout) for i in (check, solution))
        note = f" [{notes[name]}]" if name in notes else ""
        if check_error is None:
            result.exercises.append(ExerciseResult(name, max_points, max_points, True, note.strip(" []")))
            continue
        # a solution cell that timed out says more than the check that then found nothing defined
        error = solution_error if solution_error and solution_error["ename"] == "Timeout" else check_error
        message = (f"{error['ename']}: {error['evalue']}" if error["evalue"] else error["ename"]).split("\n")[0]
        # an earlier exercise that failed and whose names this one's code or check reads, or whose code the
        # traceback passed through
        trace = ANSI.sub("", "\n".join(check_error.get("traceback", [])))
        reads = used_names(cell_source(graded["cells"][solution])) | used_names(cell_source(graded["cells"][check]))
        needed = [other for other, names in failed.items()
                  if names & reads or any(re.search(rf"\b{re.escape(n)}\b", trace) for n in names)]
        if needed:
            message += f" (needs {', '.join(needed)}, which failed)"
        result.exercises.append(ExerciseResult(name, 0.0, max_points, False, message + note))
        failed[name] = defined_names(cell_source(graded["cells"][solution]))
    result.points = sum(e.points for e in result.exercises)
    result.max_points = sum(e.max_points for e in result.exercises)
    return result


def table(grade: Grade) -> str:
    """The printed report: one row per exercise, then the total."""
    width = max([len("exercise")] + [len(e.name) for e in grade.exercises])
    rows = [f"{grade.notebook}", f"  {'exercise':{width}s}  points  max  message"]
    rows += [f"  {e.name:{width}s}  {e.points:>6g}  {e.max_points:>3g}  {e.message}" for e in grade.exercises]
    rows.append(f"  {'total':{width}s}  {grade.points:>6g}  {grade.max_points:>3g}")
    return "\n".join(rows)


def write_json(grades: list[Grade], path: Path) -> None:
    Path(path).write_text(json.dumps([asdict(g) for g in grades], indent=1) + "\n")


def write_csv(grades: list[Grade], path: Path) -> None:
    """A gradebook: one row per submission, a column per exercise (of every notebook graded), the total."""
    columns = list(dict.fromkeys(e.name for g in grades for e in g.exercises))
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["notebook", *columns, "points", "max_points"])
        for g in grades:
            scores = {e.name: e.points for e in g.exercises}
            writer.writerow([g.notebook, *(f"{scores[c]:g}" if c in scores else "" for c in columns),
                             f"{g.points:g}", f"{g.max_points:g}"])
