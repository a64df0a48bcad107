"""The grader: the instructor's checks score the student's solution regions, whatever else the student changed."""
import copy
import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from minitorchnn.course import grading
from minitorchnn.course import handout as course

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


def nbgrader(grade_id: str, points: int | None = None) -> dict:
    if points is None:
        return {"nbgrader": {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3,
                             "solution": True, "task": False}}
    return {"nbgrader": {"grade": True, "grade_id": f"{grade_id}-check", "locked": True, "points": points,
                         "schema_version": 3, "solution": False, "task": False}}


def code(source: str, metadata: dict | None = None) -> dict:
    cell_id = f"cell-{abs(hash(source)) % 10**8}"
    return {"cell_type": "code", "execution_count": None, "id": cell_id, "metadata": metadata or {}, "outputs": [],
            "source": source}


INSTRUCTOR = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
    code("import math\n"),
    code("def double(x):\n    # twice x\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n", nbgrader("ex1")),
    code("# Check 1\nassert double(3) == 6, 'double(3) should be 6'\n", nbgrader("ex1", 2)),
    code("def quadruple(x):\n    ### BEGIN SOLUTION\n    return double(double(x))\n    ### END SOLUTION\n", nbgrader("ex2")),
    code("# Check 2\nassert quadruple(2) == 8, 'quadruple(2) should be 8'\n", nbgrader("ex2", 3)),
    code("def total(n):\n    ### BEGIN SOLUTION\n    return sum(range(n))\n    ### END SOLUTION\n", nbgrader("ex3")),
    code("# Check 3\nassert total(5) == 10, 'total(5) should be 10'\n", nbgrader("ex3", 1)),
    code("print('the end')\n"),
]}


def answered(notebook: dict, answers: dict[str, str]) -> dict:
    """The student version with these solution bodies written in (grade_id -> body lines)."""
    out = course.student_notebook(notebook)
    for cell in out["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            source = course.cell_source(cell)
            cell["source"] = source.replace("    # YOUR CODE HERE\n    raise NotImplementedError()", answers[grade_id])
    return out


RIGHT = {"ex1": "    return x + x", "ex2": "    return 4 * x", "ex3": "    return n * (n - 1) // 2"}


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("source")
    (folder / "hw.ipynb").write_text(json.dumps(INSTRUCTOR))
    return folder


def submit(tmp_path: Path, notebook: dict, name: str = "hw.ipynb") -> Path:
    folder = tmp_path / "submitted"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(notebook))
    return path


def scores(grade: grading.Grade) -> dict[str, float]:
    return {e.name: e.points for e in grade.exercises}


def test_the_instructors_notebook_and_right_answers_get_full_marks(source_dir, tmp_path):
    for notebook in (INSTRUCTOR, answered(INSTRUCTOR, RIGHT)):
        grade = grading.grade(submit(tmp_path, notebook), source_dir, timeout=30)
        assert scores(grade) == {"ex1": 2, "ex2": 3, "ex3": 1} and (grade.points, grade.max_points) == (6, 6)
        assert all(e.passed and e.message == "" for e in grade.exercises)


def test_the_student_version_gets_zero_even_with_its_checks_deleted_or_rewritten(source_dir, tmp_path):
    stubs = course.student_notebook(INSTRUCTOR)
    grade = grading.grade(submit(tmp_path, stubs), source_dir, timeout=30)
    assert grade.points == 0 and grade.max_points == 6
    assert [e.message for e in grade.exercises] == ["not attempted"] * 3
    assert grade.flags == [] and grade.sandboxed
    no_checks = copy.deepcopy(stubs)
    no_checks["cells"] = [c for c in no_checks["cells"] if not c["metadata"].get("nbgrader", {}).get("grade")]
    cheating = copy.deepcopy(stubs)
    for cell in cheating["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade"):
            cell["source"] = "assert True\n"
    for notebook, change in ((no_checks, "deleted"), (cheating, "edited")):
        graded = grading.grade(submit(tmp_path, notebook), source_dir, timeout=30)
        assert graded.points == 0
        assert graded.flags == [f"check cell {e}-check {change} (the instructor's check ran)" for e in ("ex1", "ex2", "ex3")]


def test_other_cells_changed_or_deleted_are_flagged_and_the_instructors_run(source_dir, tmp_path):
    notebook = answered(INSTRUCTOR, RIGHT)
    notebook["cells"][0]["source"] = "import math\nprint('mine')\n"
    del notebook["cells"][-1]
    grade = grading.grade(submit(tmp_path, notebook), source_dir, timeout=30)
    assert grade.points == 6
    assert grade.flags == ["1 code cell(s) outside the exercises added or changed (not run: the instructor's cells ran)",
                           "2 of the instructor's code cells deleted or changed (the instructor's ran)"]


def test_one_wrong_answer_loses_its_points_and_those_of_the_exercise_that_needs_it(source_dir, tmp_path):
    grade = grading.grade(submit(tmp_path, answered(INSTRUCTOR, {**RIGHT, "ex1": "    return 3 * x",
                                                                "ex2": "    return double(double(x))"})),
                          source_dir, timeout=30)
    assert scores(grade) == {"ex1": 0, "ex2": 0, "ex3": 1}
    ex1, ex2, _ = grade.exercises
    assert ex1.message == "AssertionError: double(3) should be 6"
    assert ex2.message == "AssertionError: quadruple(2) should be 8 (needs ex1, which failed)"
    alone = grading.grade(submit(tmp_path, answered(INSTRUCTOR, {**RIGHT, "ex1": "    return 3 * x"})), source_dir,
                          timeout=30)
    assert scores(alone) == {"ex1": 0, "ex2": 3, "ex3": 1}  # its own quadruple does not call double


def test_a_cell_changed_outside_its_region_is_graded_as_written(source_dir, tmp_path):
    notebook = answered(INSTRUCTOR, RIGHT)
    notebook["cells"][5]["source"] = "def total(n, start=0):\n    return sum(range(start, n))\n"  # a new signature
    grade = grading.grade(submit(tmp_path, notebook), source_dir, timeout=30)
    assert grade.points == 6 and "changed outside its solution region" in grade.exercises[2].message
    assert grade.flags == ["solution cell ex3 changed outside its solution region: graded as written"]


def grade_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "minitorchnn.course", "grade", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def test_the_command_line_grades_in_parallel_past_an_endless_loop_to_json_and_a_gradebook(source_dir, tmp_path):
    loop = tmp_path / "alice" / "hw.ipynb"
    good = tmp_path / "bob" / "hw.ipynb"
    for path, notebook in ((loop, answered(INSTRUCTOR, {**RIGHT, "ex3": "    while True:\n        pass"})),
                           (good, answered(INSTRUCTOR, RIGHT))):
        path.parent.mkdir()
        path.write_text(json.dumps(notebook))
    before = loop.read_bytes()
    out = grade_cli(loop, good, "--source", source_dir, "--timeout", 5, "--jobs", 2, "--json", tmp_path / "g.json",
                    "--csv", tmp_path / "g.csv")
    assert out.returncode == 0, out.stderr
    assert loop.read_bytes() == before  # never writes to a submission
    assert "total" in out.stdout and "Timeout: the cell ran for more than 5 s" in out.stdout
    assert "2 at a time, each in a bubblewrap sandbox" in out.stdout
    progress = sorted(line for line in out.stdout.splitlines() if line.startswith("["))
    assert [re.sub(r"in \d+ s$", "in N s", line) for line in progress] == [
        f"[1/2] {good}: 6/6 points in N s", f"[2/2] {loop}: 5/6 points in N s"] or \
        [re.sub(r"in \d+ s$", "in N s", line) for line in progress] == [
        f"[1/2] {loop}: 5/6 points in N s", f"[2/2] {good}: 6/6 points in N s"]
    grades = json.loads((tmp_path / "g.json").read_text())
    assert [set(g) for g in grades] == [{"notebook", "student", "assignment", "points", "max_points", "exercises",
                                         "flags", "sandboxed", "seconds"}] * 2
    assert set(grades[0]["exercises"][0]) == {"name", "points", "max_points", "passed", "message"}
    assert [(g["student"], g["assignment"], g["points"], g["max_points"]) for g in grades] == [
        ("alice", "hw.ipynb", 5, 6), ("bob", "hw.ipynb", 6, 6)]
    rows = list(csv.reader((tmp_path / "g.csv").open()))
    assert rows == [["student", "ex1", "ex2", "ex3", "hw points", "points", "max_points", "flags"],
                    ["alice", "2", "3", "0", "5", "5", "6", ""], ["bob", "2", "3", "1", "6", "6", "6", ""]]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_has_nbgrader_metadata(path):
    notebook = json.loads(path.read_text())
    pairs = grading.exercises(notebook)
    assert len(pairs) >= 2
    ids = []
    for solution, check in pairs:
        meta, check_meta = (notebook["cells"][i]["metadata"]["nbgrader"] for i in (solution, check))
        assert course.BEGIN in course.cell_source(notebook["cells"][solution])
        assert (meta["solution"], meta["grade"], meta["locked"]) == (True, False, False)
        assert (check_meta["grade"], check_meta["solution"], check_meta["locked"]) == (True, False, True)
        assert check_meta["points"] > 0 and check_meta["grade_id"] == meta["grade_id"] + "-check"
        ids += [meta["grade_id"], check_meta["grade_id"]]
    marked = [c for c in notebook["cells"] if c["cell_type"] == "code" and course.BEGIN in course.cell_source(c)]
    assert len(marked) == len(pairs), "every cell with a solution region is a graded solution cell"
    assert len(set(ids)) == len(ids)


def test_a_course_notebook_grades_full_for_the_instructor_and_zero_for_the_stubs(tmp_path):
    source = ROOT / "notebooks"
    instructor = grading.grade(source / "01_mlp.ipynb", source, timeout=120)
    assert instructor.points == instructor.max_points > 0, grading.table(instructor)
    stubs = submit(tmp_path, course.student_notebook(json.loads((source / "01_mlp.ipynb").read_text())), "01_mlp.ipynb")
    assert grading.grade(stubs, source, timeout=120).points == 0
