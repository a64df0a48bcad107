"""Grade submissions with the instructor's checks: `python -m minitorchnn.course grade SUBMISSION... --source DIR`.

An exercise is a solution cell (nbgrader metadata `solution: true`, code between `### BEGIN SOLUTION` and
`### END SOLUTION`) followed by a check cell (`grade: true`, its `points`). A submission is matched to the
instructor's notebook by the nbgrader `grade_id`s of its solution cells, whatever its file is called.
Grading runs the *instructor's* notebook with the student's code put into its solution regions: whatever the
student did to the other cells, checks included, changes nothing, and the report flags it.

The kernel runs in a fresh folder holding only the files the notebook reads, inside a sandbox where the
machine has one (sandbox.py). A check counts only if it ran to its end: the grader appends to each check a
line printing a random token made for this run, and looks for it in that cell's output. Probe cells after
each check report any IPython input transformer, AST transformer, shell method or builtin that the
submission replaced; the report flags them.
"""
from __future__ import annotations

import ast
import copy
import csv
import json
import os
import re
import secrets
import stat
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .handout import BEGIN, END, SOLUTION, cell_source, strip_solutions

MAX_NOTEBOOK_BYTES = 50_000_000
DATA_FILES = ("names.txt", "shakespeare.txt")
STUB = re.compile(r"^[ \t]*# YOUR CODE HERE\n[ \t]*raise NotImplementedError\(\)\n?", re.M)
# builtins IPython itself sets or changes while running cells
SHELL_BUILTINS = {"_", "__", "___", "display", "get_ipython", "exit", "quit", "input", "__IPYTHON__", "dreload",
                  "__builtins__", "_ih", "_oh", "_dh", "In", "Out"}
ESCAPES = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]?|\x9b[0-?]*[ -/]*[@-~]")
ANSI = ESCAPES  # the name tracebacks were cleaned with


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
    notebook: str  # the submission's path
    points: float = 0.0
    max_points: float = 0.0
    exercises: list[ExerciseResult] = field(default_factory=list)
    student: str = ""
    assignment: str = ""  # the instructor's notebook it was graded against (its file name)
    flags: list[str] = field(default_factory=list)  # for the instructor: changes outside solutions, tricks
    sandboxed: bool = False
    seconds: float = 0.0


@dataclass
class Prepared:
    """A submission checked and ready to run: the instructor's notebook with the student's code in it."""
    submission: Path
    instructor: Path
    graded: dict
    notes: dict[str, str]  # grade_id -> note on how its cell was used
    flags: list[str]
    stubs: set[str]  # grade_ids whose every solution region is still the stub
    student: str = ""


def clean(text: str) -> str:
    """Text safe for a terminal: escape sequences, control characters and bidirectional overrides removed."""
    text = ESCAPES.sub("", str(text))
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf"))


def _nbgrader(cell: dict) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


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


def _check_structure(notebook, path) -> None:
    """A one-line GradingError naming the file and cell for anything that is not a well-formed notebook."""
    def bad(why: str) -> GradingError:
        return GradingError(f"{path} is not a well-formed notebook: {why}")

    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise bad("no list of cells")
    if not isinstance(notebook.get("metadata", {}), dict):
        raise bad("its metadata is not a mapping")
    for i, cell in enumerate(notebook["cells"]):
        if not isinstance(cell, dict):
            raise bad(f"cell {i} is a {type(cell).__name__}, not a cell")
        if cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise bad(f"cell {i} has cell_type {cell.get('cell_type')!r}")
        source = cell.get("source", "")
        if not (isinstance(source, str) or isinstance(source, list) and all(isinstance(s, str) for s in source)):
            raise bad(f"cell {i}'s source is a {type(source).__name__}, not text")
        if not isinstance(cell.get("metadata", {}), dict):
            raise bad(f"cell {i}'s metadata is not a mapping")
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not isinstance(meta, dict):
            raise bad(f"cell {i}'s nbgrader metadata is not a mapping")
        if "grade_id" in meta and not isinstance(meta["grade_id"], str):
            raise bad(f"cell {i}'s grade_id is a {type(meta['grade_id']).__name__}, not text")
        points = meta.get("points", 0)
        if isinstance(points, bool) or not isinstance(points, (int, float)):
            raise bad(f"cell {i}'s points are not a number")
        if cell["cell_type"] == "code" and not isinstance(cell.get("outputs", []), list):
            raise bad(f"cell {i}'s outputs are not a list")


def load_notebook(path: Path) -> dict:
    """Read a notebook; a symbolic link, a file that is not a regular file, or one too large is refused."""
    path = Path(path)
    try:
        info = os.lstat(path)
    except OSError as err:
        raise GradingError(f"{path} cannot be read: {err.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise GradingError(f"{path} is a symbolic link: refused (hand in the notebook itself)")
    if not stat.S_ISREG(info.st_mode):
        raise GradingError(f"{path} is not a regular file: refused")
    if info.st_size > MAX_NOTEBOOK_BYTES:
        raise GradingError(f"{path} is {info.st_size:,} bytes, more than {MAX_NOTEBOOK_BYTES:,}: refused")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_NOTEBOOK_BYTES + 1)
        notebook = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise GradingError(f"{path} is not a notebook: {clean(err)}".split("\n")[0]) from None
    _check_structure(notebook, path)
    return notebook


def solution_ids(notebook: dict) -> list[str]:
    return [_nbgrader(c)["grade_id"] for c in notebook["cells"]
            if _nbgrader(c).get("solution") and c["cell_type"] == "code" and "grade_id" in _nbgrader(c)]


def instructor_index(source_dir: Path) -> dict[Path, list[str]]:
    """The instructor's notebooks in source_dir and the grade_ids of their solution cells."""
    index = {}
    for path in sorted(Path(source_dir).glob("*.ipynb")):
        ids = solution_ids(load_notebook(path))
        if ids:
            index[path] = ids
    if not index:
        raise GradingError(f"{source_dir}: no graded notebooks (solution cells with nbgrader metadata)")
    return index


def match(submission: Path, notebook: dict, index: dict[Path, list[str]]) -> Path:
    """The instructor's notebook whose exercises the submission's solution cells are, by grade_id."""
    ids = set(solution_ids(notebook))
    if not ids:
        raise GradingError(f"{submission}: no graded solution cells (nbgrader metadata): cannot tell which "
                           f"notebook it is")
    exact = [path for path, theirs in index.items() if set(theirs) == ids]
    overlap = [path for path, theirs in index.items() if set(theirs) & ids]
    found = exact or overlap
    if not found:
        raise GradingError(f"{submission}: its exercises {sorted(ids)} match no instructor notebook in "
                           f"{next(iter(index)).parent}")
    if len(found) > 1:
        named = [p for p in found if p.name == Path(submission).name]
        if len(named) == 1:
            return named[0]
        raise GradingError(f"{submission}: ambiguous, its exercises match {', '.join(p.name for p in found)}")
    return found[0]


def student_code(template: str, submitted: str) -> list[str] | None:
    """The student's code for each solution region of a cell, or None if the cell was changed outside them.

    template is the instructor's cell with its regions stubbed; the student's cell must keep everything
    outside the regions (a submission made from the instructor's own notebook keeps its markers: dropped).
    """
    submitted = "\n".join(line for line in submitted.split("\n") if line.strip() not in (BEGIN, END))
    fixed = STUB.split(template)
    pattern = "(.*?)".join(re.escape(part) for part in fixed)
    match_ = re.fullmatch(pattern, submitted, re.S)
    return list(match_.groups()) if match_ else None


def fill_regions(instructor: str, code: list[str]) -> str:
    """The instructor's cell with region k's solution replaced by code[k] (markers kept)."""
    regions = iter(code)

    def fill(match_: re.Match) -> str:  # the region course.strip_solutions finds, with the student's code inside
        lines = match_.group(0).rstrip("\n").split("\n")
        return "\n".join([lines[0], next(regions).rstrip("\n"), lines[-1]]) + match_.group(2)

    return SOLUTION.sub(fill, instructor)


def _is_stub(code: str) -> bool:
    return re.fullmatch(r"\s*# YOUR CODE HERE\s*raise NotImplementedError\(\)\s*", code) is not None


def graded_notebook(instructor: dict, submission: dict, name: str) -> tuple[dict, dict[str, str]]:
    """The instructor's notebook with the student's solutions in it; a note for each cell used whole."""
    graded, notes, _, _ = _graded(instructor, submission, name)
    return graded, notes


def _graded(instructor: dict, submission: dict, name: str) -> tuple[dict, dict[str, str], list[str], set[str]]:
    submitted = {_nbgrader(c).get("grade_id"): cell_source(c) for c in submission["cells"]
                 if _nbgrader(c).get("solution") and c["cell_type"] == "code"}
    solutions = [i for i, _ in exercises(instructor)]
    expected = [_nbgrader(instructor["cells"][i]).get("grade_id") for i in solutions]
    if sorted(submitted, key=str) != sorted(expected, key=str):
        raise GradingError(f"{name}: its solution cells {sorted(submitted, key=str)} do not match the instructor's "
                           f"{sorted(expected, key=str)}")
    graded, notes, flags, stubs = copy.deepcopy(instructor), {}, [], set()
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
            flags.append(f"solution cell {grade_id} changed outside its solution region: graded as written")
        else:
            cell["source"] = fill_regions(source, code)
            if code and all(_is_stub(c) for c in code):
                stubs.add(grade_id)
    flags += _changes_outside_solutions(instructor, submission)
    return graded, notes, flags, stubs


def _changes_outside_solutions(instructor: dict, submission: dict) -> list[str]:
    """What the student changed that the grader does not run: check cells, other code cells."""
    flags = []
    checks = {_nbgrader(c).get("grade_id"): cell_source(c) for c in submission["cells"]
              if _nbgrader(c).get("grade") and c["cell_type"] == "code"}
    for cell in instructor["cells"]:
        meta = _nbgrader(cell)
        if not (meta.get("grade") and cell["cell_type"] == "code"):
            continue
        grade_id = meta.get("grade_id")
        if grade_id not in checks:
            flags.append(f"check cell {grade_id} deleted (the instructor's check ran)")
        elif checks[grade_id].strip() != cell_source(cell).strip():
            flags.append(f"check cell {grade_id} edited (the instructor's check ran)")
    plain = lambda nb: [strip_solutions(cell_source(c)).strip() for c in nb["cells"] if c["cell_type"] == "code"
                        and not _nbgrader(c).get("grade") and not _nbgrader(c).get("solution")]
    theirs, ours = plain(submission), plain(instructor)
    changed = [s for s in theirs if s not in ours]
    deleted = [s for s in ours if s not in theirs]
    if changed:
        flags.append(f"{len(changed)} code cell(s) outside the exercises added or changed (not run: the "
                     f"instructor's cells ran)")
    if deleted:
        flags.append(f"{len(deleted)} of the instructor's code cells deleted or changed (the instructor's ran)")
    return flags


def student_name(submission: Path, pattern: str | None = None) -> str:
    """The student a submission belongs to: its folder's name, or what `pattern` (a regex) finds in its path."""
    if pattern is None:
        return clean(Path(submission).parent.name) or "."
    found = re.search(pattern, Path(submission).as_posix())
    if found is None:
        raise GradingError(f"{submission}: --student pattern {pattern!r} does not match its path")
    if "student" in found.groupdict():
        return clean(found.group("student"))
    return clean(found.group(1) if found.groups() else found.group(0))


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


def prepare(submission: Path, source_dir: Path, index: dict[Path, list[str]] | None = None,
            instructor: Path | None = None, pattern: str | None = None) -> Prepared:
    """Check a submission and build the notebook to run for it; GradingError (one line) if it can't be graded."""
    notebook = load_notebook(submission)
    if instructor is None:
        instructor = match(submission, notebook, index if index is not None else instructor_index(source_dir))
    graded, notes, flags, stubs = _graded(load_notebook(instructor), notebook, str(submission))
    return Prepared(Path(submission), Path(instructor), graded, notes, flags, stubs,
                    student_name(submission, pattern))


# one line, so that it runs whole or not at all
PROBE = ("(lambda ip, b, j: print({marker!r}, j.dumps({{"
         "'transformers': [[id(t), getattr(t, '__qualname__', type(t).__qualname__)] for t in "
         "ip.input_transformers_cleanup + ip.input_transformers_post + ip.input_transformer_manager.line_transforms"
         " + ip.input_transformer_manager.token_transformers], "
         "'ast': [[id(t), type(t).__qualname__] for t in ip.ast_transformers], "
         "'shell': {{n: id(getattr(getattr(ip, n), '__func__', getattr(ip, n))) for n in ('run_cell', "
         "'run_cell_async', 'transform_cell', 'run_ast_nodes', 'run_code', 'should_run_async')}}, "
         "'builtins': {{k: id(v) for k, v in vars(b).items()}}}})))"
         "(get_ipython(), __import__('builtins'), __import__('json'))\n")


# the first cell the grader runs: caps each cell's stdout and stderr in the kernel itself, so that a loud but
# honest notebook is still graded (the grader's own cap, a limit on each message, is the guard for the rest)
KERNEL_CAP = """def _minitorchnn_cap(cap):
    import sys
    state = {{"written": 0}}
    get_ipython().events.register("pre_run_cell", lambda *args: state.update(written=0))
    for stream in (sys.stdout, sys.stderr):
        def write(text, write=stream.write):
            if "mtn-" in text:  # the grader's tokens always get through
                return write(text)
            room = cap - state["written"]
            state["written"] += len(text)
            if room <= 0:
                return len(text)
            if len(text) > room:
                write(text[:room] + "\\n[output truncated by the grader]\\n")
                return len(text)
            return write(text)
        stream.write = write
_minitorchnn_cap({cap})
del _minitorchnn_cap
"""


def _probe_findings(baseline: dict, probe: dict) -> list[str]:
    flags = []
    base_ids = {i for i, _ in baseline["transformers"]}
    added = [name for i, name in probe["transformers"] if i not in base_ids]
    if added or len(probe["transformers"]) != len(baseline["transformers"]):
        flags.append(f"installs IPython input transformers ({', '.join(added) or 'the list was changed'})")
    if probe["ast"] != baseline["ast"]:
        flags.append(f"installs IPython AST transformers ({', '.join(n for _, n in probe['ast'])})")
    shell = [n for n, i in probe["shell"].items() if baseline["shell"].get(n) != i]
    if shell:
        flags.append(f"replaces the shell's {', '.join(shell)}")
    builtins = sorted(n for n in set(probe["builtins"]) | set(baseline["builtins"])
                      if probe["builtins"].get(n) != baseline["builtins"].get(n) and n not in SHELL_BUILTINS)
    if builtins:
        flags.append(f"replaces builtins: {', '.join(builtins[:10])}")
    return flags


def _parse_probe(lines: list[str], marker: str) -> dict | None:
    for line in lines:
        if line.startswith(marker):
            try:
                return json.loads(line[len(marker):])
            except json.JSONDecodeError:
                return None
    return None


def grade(submission: Path, source_dir: Path, timeout: int = 120, full: bool = False,
          prepared: Prepared | None = None, sandbox: bool | None = None) -> Grade:
    """Run the instructor's notebook with the submission's solutions and score every check.

    prepared: what prepare() returned for this submission, when the caller checked it already.
    sandbox: None to use bubblewrap where it works, False to run without it (tests of the fallback).
    """
    import nbformat

    from .files import files_needed, find_for
    from .sandbox import OUTPUT_CAP, run_notebook

    ready = prepared or prepare(submission, source_dir)
    graded = ready.graded
    pairs = exercises(graded)
    checks = {check for _, check in pairs}
    # the notebook that runs: a probe first, then each cell; each check prints its token, then a probe
    cells, where, tokens, probes = [], {}, {}, []
    run_token = secrets.token_hex(8)

    def probe() -> None:
        marker = f"mtn-probe-{run_token}-{len(probes)}"
        probes.append((len(cells), marker))
        cells.append(nbformat.v4.new_code_cell(PROBE.format(marker=marker)))

    cells.append(nbformat.v4.new_code_cell(KERNEL_CAP.format(cap=OUTPUT_CAP // 2)))
    probe()
    for i, cell in enumerate(graded["cells"]):
        node = nbformat.from_dict(copy.deepcopy(cell))
        node.setdefault("metadata", {})
        if cell["cell_type"] == "code":
            node["outputs"], node["execution_count"] = [], None
            node["source"] = cell_source(cell)
        else:
            node["source"] = cell_source(cell)
        if i in checks:
            tokens[i] = f"mtn-check-{secrets.token_hex(16)}"
            node["source"] = node["source"].rstrip("\n") + f"\nprint({tokens[i]!r})\n"
        where[i] = len(cells)
        cells.append(node)
        if i in checks:
            probe()
    notebook = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(graded.get("metadata", {})))
    files = {name: _data_file(name) for name in DATA_FILES}
    for name in files_needed(graded):
        files[name] = find_for(name, ready.instructor.parent)
    env = {"CI": "false" if full else "true", "MINITORCHNN_PROGRESS": "0"}
    markers = set(tokens.values()) | {m for _, m in probes}
    run = run_notebook(notebook, files, timeout, env, tokens=markers, sandbox=sandbox)

    result = Grade(notebook=str(submission), student=ready.student, assignment=ready.instructor.name,
                   flags=list(ready.flags), sandboxed=run.sandboxed, seconds=round(run.seconds, 1))
    probe_flags, tampered_from = _probe_flags(run, probes)
    result.flags += probe_flags
    if run.death:
        died_in = _cell_name(graded, pairs, run.died_at, where)
        result.flags.append(f"{run.death} while running {died_in}")
    failed = {}
    for solution, check in pairs:
        name = _nbgrader(graded["cells"][solution])["grade_id"]
        max_points = float(_nbgrader(graded["cells"][check]).get("points", 0))
        note = f" [{ready.notes[name]}]" if name in ready.notes else ""
        cell = run.cells[where[check]]
        if not run.ran[where[check]]:
            why = (f"not graded: {run.death} while running {_cell_name(graded, pairs, run.died_at, where)}"
                   if run.death else "not run")
            result.exercises.append(ExerciseResult(name, 0.0, max_points, False, clean(why)))
            failed[name] = defined_names(cell_source(graded["cells"][solution]))
            continue
        check_error = _error(cell, timeout)
        solution_error = _error(run.cells[where[solution]], timeout)
        ran_to_end = any(tokens[check] in line for line in run.tokens.get(where[check], []))
        if check_error is None and ran_to_end and tampered_from is not None and where[check] >= tampered_from:
            result.exercises.append(ExerciseResult(name, 0.0, max_points, False, clean(
                f"not trusted: before this check the notebook changed how cells run ({probe_flags[0]})")))
            failed[name] = set()
            continue
        if check_error is None and ran_to_end:
            result.exercises.append(ExerciseResult(name, max_points, max_points, True, note.strip(" []")))
            continue
        if check_error is None:  # no error, but its last line never printed: it did not run as written
            message = "the check did not run as written (the grader's token never appeared): 0 points"
        elif name in ready.stubs:
            message = "not attempted"
        else:
            # a solution cell that timed out says more than the check that then found nothing defined
            error = solution_error if solution_error and solution_error["ename"] == "Timeout" else check_error
            message = (f"{error['ename']}: {error['evalue']}" if error["evalue"] else error["ename"]).split("\n")[0]
            # an earlier exercise that failed and whose names this one's code or check reads, or whose code
            # the traceback passed through
            trace = ESCAPES.sub("", "\n".join(check_error.get("traceback", [])))
            reads = (used_names(cell_source(graded["cells"][solution]))
                     | used_names(cell_source(graded["cells"][check])))
            needed = [other for other, names in failed.items()
                      if names & reads or any(re.search(rf"\b{re.escape(n)}\b", trace) for n in names)]
            if needed:
                message += f" (needs {', '.join(needed)}, which failed)"
        result.exercises.append(ExerciseResult(name, 0.0, max_points, False, clean(message + note)))
        failed[name] = defined_names(cell_source(graded["cells"][solution]))
    result.points = sum(e.points for e in result.exercises)
    result.max_points = sum(e.max_points for e in result.exercises)
    result.flags = [clean(f) for f in dict.fromkeys(result.flags)]
    return result


def _data_file(name: str) -> Path:
    from ..data.files import data_path

    return data_path(name)


def _cell_name(graded: dict, pairs: list[tuple[int, int]], died_at: int | None, where: dict[int, int]) -> str:
    """The grade_id of the exercise whose cell was running, or the cell's number."""
    index = next((i for i, w in where.items() if w == died_at), None)
    for solution, check in pairs:
        name = _nbgrader(graded["cells"][solution])["grade_id"]
        if index == solution:
            return f"{name}'s solution cell"
        if index == check:
            return f"{name}'s check"
    return f"cell {index}" if index is not None else "a grader cell"


def _probe_flags(run, probes: list[tuple[int, str]]) -> tuple[list[str], int | None]:
    """What the probes saw changed since the first one, and the cell index of the first probe that saw it
    (every check before that probe is trusted; a check after it is not)."""
    flags, first = [], None
    baseline = _parse_probe(run.tokens.get(probes[0][0], []), probes[0][1]) if probes else None
    if baseline is None:
        return ([] if run.died_at == 0 else ["the grader's first probe did not run"]), 0
    for index, marker in probes[1:]:
        if not run.ran[index]:
            break
        found = _parse_probe(run.tokens.get(index, []), marker)
        seen = (["changes how cells run: a grader probe cell printed nothing"] if found is None
                else _probe_findings(baseline, found))
        if seen and first is None:
            first = index - 1  # the check just before this probe ran after the change: not trusted
        flags += seen
    return list(dict.fromkeys(flags)), first


def table(grade: Grade) -> str:
    """The printed report: one row per exercise, then the total and any flags; safe for a terminal."""
    width = max([len("exercise")] + [len(e.name) for e in grade.exercises])
    who = f" ({grade.student}, graded as {grade.assignment})" if grade.student else ""
    rows = [f"{grade.notebook}{who}", f"  {'exercise':{width}s}  points  max  message"]
    rows += [f"  {e.name:{width}s}  {e.points:>6g}  {e.max_points:>3g}  {e.message}" for e in grade.exercises]
    rows.append(f"  {'total':{width}s}  {grade.points:>6g}  {grade.max_points:>3g}")
    rows += [f"  flag: {flag}" for flag in grade.flags]
    if not grade.sandboxed:
        rows.append("  not sandboxed: this kernel ran with the grader's own access (bubblewrap unavailable)")
    return "\n".join(clean(row) for row in rows)


def write_json(grades: list[Grade], path: Path) -> None:
    from ..fileio import write_atomic

    write_atomic(Path(path), json.dumps([asdict(g) for g in grades], indent=1) + "\n")


def gradebook(grades: list[Grade]) -> list[list[str]]:
    """One row per student: a column per exercise of every notebook graded, each notebook's total, the total.

    A notebook a student did not hand in leaves its cells empty and counts 0 of its points.
    """
    assignments = sorted({g.assignment for g in grades})
    columns = {a: list(dict.fromkeys(e.name for g in grades if g.assignment == a for e in g.exercises))
               for a in assignments}
    most = {a: max(g.max_points for g in grades if g.assignment == a) for a in assignments}
    header = ["student"]
    for a in assignments:
        header += [*columns[a], f"{Path(a).stem} points"]
    header += ["points", "max_points", "flags"]
    rows = [header]
    for student in sorted({g.student for g in grades}):
        theirs = {g.assignment: g for g in grades if g.student == student}
        row = [student]
        for a in assignments:
            g = theirs.get(a)
            scores = {e.name: e.points for e in g.exercises} if g else {}
            row += [f"{scores[c]:g}" if c in scores else "" for c in columns[a]]
            row.append(f"{g.points:g}" if g else "")
        row += [f"{sum(g.points for g in theirs.values()):g}", f"{sum(most.values()):g}",
                "; ".join(f"{Path(a).stem}: {flag}" for a, g in sorted(theirs.items()) for flag in g.flags)]
        rows.append(row)
    return rows


def write_csv(grades: list[Grade], path: Path) -> None:
    """The gradebook (gradebook()) as CSV; the per-notebook detail is in the JSON."""
    import io

    from ..fileio import write_atomic

    out = io.StringIO(newline="")
    csv.writer(out).writerows(gradebook(grades))
    write_atomic(Path(path), out.getvalue())


def grade_from_dict(data: dict) -> Grade:
    """A Grade from its JSON form (asdict)."""
    exercises_ = [ExerciseResult(**e) for e in data.pop("exercises")]
    return Grade(**data, exercises=exercises_)


def failed_grade(prepared: Prepared, why: str) -> Grade:
    """0 points on every exercise, with the reason: what a submission whose grading crashed gets."""
    graded = prepared.graded
    result = Grade(notebook=str(prepared.submission), student=prepared.student,
                   assignment=prepared.instructor.name, flags=list(prepared.flags) + [clean(why)])
    for solution, check in exercises(graded):
        name = _nbgrader(graded["cells"][solution])["grade_id"]
        max_points = float(_nbgrader(graded["cells"][check]).get("points", 0))
        result.exercises.append(ExerciseResult(name, 0.0, max_points, False, clean(f"not graded: {why}")))
    result.max_points = sum(e.max_points for e in result.exercises)
    return result
