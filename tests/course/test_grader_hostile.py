"""The grader against hostile and broken submissions: issue 24's cases, each with a real submission.

Every submission here is a notebook the grader really runs: it reads the solutions, writes to the package,
kills its kernel, installs an input transformer, leaves a detached child behind, prints without end, and so
on. The grader must score each right and keep the class, the package and the instructor's files safe.
"""
import copy
import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import minitorchnn
from minitorchnn.course import grading, sandbox
from minitorchnn.course import handout as course

from test_grading import INSTRUCTOR, RIGHT, answered, grade_cli, scores  # tests/course is on sys.path

PACKAGE = Path(minitorchnn.__file__).resolve().parent
ROOT = PACKAGE.parent


def renamed(notebook: dict, prefix: str) -> dict:
    """The same exercises under other grade_ids (another assignment)."""
    return json.loads(re.sub(r'"ex(\d)', rf'"{prefix}\1', json.dumps(notebook)))


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("source")
    (folder / "hw.ipynb").write_text(json.dumps(INSTRUCTOR))
    (folder / "hw2.ipynb").write_text(json.dumps(renamed(INSTRUCTOR, "hx")))
    return folder


def hand_in(folder: Path, name: str, notebook: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(notebook))
    return path


def body(code: str) -> str:
    """Lines of code as the body of a solution function (4 spaces in)."""
    return "\n".join("    " + line for line in code.strip("\n").split("\n"))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                pass
    return found


def test_bubblewrap_works_here_so_every_kernel_is_sandboxed():
    assert sandbox.bwrap_works(), "bubblewrap is missing or cannot sandbox: `apt-get install bubblewrap` (.ci/run does)"


# 1. Escape: the solutions, the package, the source, a detached child

def test_a_submission_that_reads_the_solutions_gets_nothing(source_dir, tmp_path):
    repo_notebook = ROOT / "notebooks" / "01_mlp.ipynb"
    reader = body(f"""
import glob, os, pathlib
import minitorchnn
here = sorted(os.listdir("."))
targets = ["hw.ipynb", "../hw.ipynb", {str(source_dir / 'hw.ipynb')!r}, {str(repo_notebook)!r},
           str(pathlib.Path(minitorchnn.__file__).parents[1] / "notebooks" / "01_mlp.ipynb")]
targets += glob.glob("/tmp/**/*.ipynb", recursive=True) + glob.glob("/root/**/*.ipynb", recursive=True)
for target in targets:
    try:
        text = open(target).read()
    except OSError:
        continue
    raise AssertionError(f"read {{target}}: {{text[:60]!r}}")
assert here == ["names.txt", "shakespeare.txt"], here
return 2 * x""")
    path = hand_in(tmp_path / "mallory", "hw.ipynb", answered(INSTRUCTOR, {**RIGHT, "ex1": reader}))
    hand_in(tmp_path / "bob", "hw.ipynb", answered(INSTRUCTOR, RIGHT))  # another submission beside it
    grade = grading.grade(path, source_dir, timeout=30, prepared=grading.prepare(path, source_dir))
    assert grade.sandboxed
    assert scores(grade) == {"ex1": 2, "ex2": 3, "ex3": 1}, grading.table(grade)


def test_a_submission_that_writes_to_the_package_or_the_source_leaves_them_unchanged(source_dir, tmp_path):
    marker = PACKAGE / f"written-by-a-submission-{uuid.uuid4().hex}"
    writer = body(f"""
import minitorchnn, pathlib
wrote = []
for target, mode in [(minitorchnn.__file__, "a"), ({str(marker)!r}, "w"), ({str(source_dir / 'hw.ipynb')!r}, "a"),
                     ({str(source_dir / 'new.ipynb')!r}, "w")]:
    try:
        open(target, mode).close()  # opened for writing, nothing written: a probe that changes no file
        wrote.append(target)
    except OSError:
        pass
assert not wrote, wrote
return 2 * x""")
    before = {p: sha(p) for p in [PACKAGE / "__init__.py", source_dir / "hw.ipynb"]}
    path = hand_in(tmp_path / "mallory", "hw.ipynb", answered(INSTRUCTOR, {**RIGHT, "ex1": writer}))
    try:
        grade = grading.grade(path, source_dir, timeout=30, prepared=grading.prepare(path, source_dir))
    finally:
        written = marker.exists()
        marker.unlink(missing_ok=True)
        (source_dir / "new.ipynb").unlink(missing_ok=True)
    assert not written and scores(grade) == {"ex1": 2, "ex2": 3, "ex3": 1}, grading.table(grade)
    assert {p: sha(p) for p in before} == before
    nxt = hand_in(tmp_path / "bob", "hw.ipynb", answered(INSTRUCTOR, RIGHT))
    assert grading.grade(nxt, source_dir, timeout=30).points == 6  # the next student is not harmed


@pytest.mark.parametrize("sandboxed", [True, False], ids=["sandboxed", "not-sandboxed"])
def test_a_detached_child_does_not_survive_the_grade(sandboxed, source_dir, tmp_path):
    marker = f"mtn-detached-{uuid.uuid4().hex}"
    late = tmp_path / "written-after-grading.txt"
    spawner = body(f"""
import subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time, sys; time.sleep(3); open(sys.argv[2], 'w').write('late')",
                  {marker!r}, {str(late)!r}], start_new_session=True, stdin=subprocess.DEVNULL,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
return 2 * x""")
    path = hand_in(tmp_path / "mallory", "hw.ipynb", answered(INSTRUCTOR, {**RIGHT, "ex1": spawner}))
    grade = grading.grade(path, source_dir, timeout=30, prepared=grading.prepare(path, source_dir),
                          sandbox=sandboxed)
    assert grade.points == 6 and grade.sandboxed == sandboxed
    assert processes_with(marker) == []
    time.sleep(4)
    assert not late.exists()


def test_a_detached_child_cannot_rewrite_the_gradebook_after_the_grader_exits(source_dir, tmp_path):
    gradebook = tmp_path / "grades.csv"
    rewriter = body(f"""
import subprocess
subprocess.Popen(["sh", "-c", "sleep 3; echo student,2,3,5,5 > {gradebook}"], start_new_session=True)
return 3 * x""")
    path = hand_in(tmp_path / "mallory", "hw.ipynb", answered(INSTRUCTOR, {**RIGHT, "ex1": rewriter}))
    out = grade_cli(path, "--source", source_dir, "--csv", gradebook, "--timeout", 30)
    assert out.returncode == 0, out.stderr
    written = gradebook.read_text()
    time.sleep(4)
    assert gradebook.read_text() == written
    assert list(csv.reader(written.splitlines()))[1][:4] == ["mallory", "0", "3", "1"]  # only double() was wrong


# 2. Full marks without solving anything

def test_the_input_transformer_trick_scores_zero_on_the_checks_it_blanked(source_dir, tmp_path):
    blank = answered(INSTRUCTOR, RIGHT)
    blank["cells"][1]["source"] = ("get_ipython().input_transformers_cleanup.append(lambda lines: [])\n"
                                   "def double(x):\n    # twice x\n    raise NotImplementedError()\n")
    path = hand_in(tmp_path / "mallory", "hw.ipynb", blank)
    grade = grading.grade(path, source_dir, timeout=30)
    assert scores(grade) == {"ex1": 0, "ex2": 0, "ex3": 0}, grading.table(grade)
    assert all("did not run as written" in e.message for e in grade.exercises)
    assert "changes how cells run: a grader probe cell printed nothing" in grade.flags


def test_a_transformer_that_keeps_the_graders_lines_is_flagged_and_its_checks_not_trusted(source_dir, tmp_path):
    smart = answered(INSTRUCTOR, RIGHT)
    smart["cells"][1]["source"] = (
        "get_ipython().input_transformers_cleanup.append(lambda lines: [l for l in lines if 'mtn-' in l])\n"
        "def double(x):\n    # twice x\n    raise NotImplementedError()\n")
    path = hand_in(tmp_path / "mallory", "hw.ipynb", smart)
    grade = grading.grade(path, source_dir, timeout=30)
    assert grade.points == 0, grading.table(grade)
    assert all(e.message.startswith("not trusted: before this check the notebook changed how cells run")
               for e in grade.exercises)
    assert any(f.startswith("installs IPython input transformers (<lambda>)") for f in grade.flags), grade.flags


def test_replaced_builtins_are_flagged(source_dir, tmp_path):
    notebook = answered(INSTRUCTOR, {**RIGHT, "ex3": body("import builtins\nbuiltins.abs = lambda v: 0\n"
                                                          "return n * (n - 1) // 2")})
    grade = grading.grade(hand_in(tmp_path / "mallory", "hw.ipynb", notebook), source_dir, timeout=30)
    assert "replaces builtins: abs" in grade.flags
    assert scores(grade) == {"ex1": 2, "ex2": 3, "ex3": 0}  # the check that ran after the change is not trusted


# 3. One submission aborts the whole class

def test_a_kernel_that_dies_costs_only_its_own_remaining_exercises(source_dir, tmp_path):
    dying = hand_in(tmp_path / "alice", "hw.ipynb", answered(INSTRUCTOR, {**RIGHT, "ex2": body("import os\nos._exit(0)")}))
    good = hand_in(tmp_path / "bob", "hw.ipynb", answered(INSTRUCTOR, RIGHT))
    out = grade_cli(dying, good, "--source", source_dir, "--csv", tmp_path / "g.csv", "--json", tmp_path / "g.json",
                    "--timeout", 30)
    assert out.returncode == 0, out.stderr
    grades = {g["student"]: g for g in json.loads((tmp_path / "g.json").read_text())}
    assert [(e["name"], e["points"], e["message"]) for e in grades["alice"]["exercises"]] == [
        ("ex1", 2, ""),
        ("ex2", 0, "not graded: the kernel exited with code 0 while running ex2's check"),
        ("ex3", 0, "not graded: the kernel exited with code 0 while running ex2's check")]
    assert grades["bob"]["points"] == 6
    assert list(csv.reader((tmp_path / "g.csv").open()))[1:] == [["alice", "2", "0", "0", "2", "2", "6",
                                                                   "hw: the kernel exited with code 0 while running ex2's check"],
                                                                  ["bob", "2", "3", "1", "6", "6", "6", ""]]


def test_a_cell_that_ignores_the_interrupt_is_killed_and_costs_the_rest(source_dir, tmp_path):
    stubborn = body("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.1)")
    path = hand_in(tmp_path / "alice", "hw.ipynb", answered(INSTRUCTOR, {**RIGHT, "ex2": stubborn}))
    grade = grading.grade(path, source_dir, timeout=2)
    assert scores(grade) == {"ex1": 2, "ex2": 0, "ex3": 0}
    assert grade.exercises[2].message == ("not graded: the cell ran past twice the time limit and ignored the "
                                          "interrupt: killed while running ex2's check")


# 4.-8. Checked before any work, one line each

def test_report_paths_are_checked_before_anything_is_graded(source_dir, tmp_path):
    path = hand_in(tmp_path / "alice", "hw.ipynb", answered(INSTRUCTOR, RIGHT))
    for flag, bad, why in [("--json", tmp_path / "missing" / "g.json", "does not exist"),
                           ("--csv", tmp_path, "is a folder"), ("--csv", path, "is a submission")]:
        other = tmp_path / "other.json" if flag == "--csv" else tmp_path / "other.csv"
        out = grade_cli(path, "--source", source_dir, flag, bad, "--json" if flag == "--csv" else "--csv", other)
        assert out.returncode == 2 and out.stdout == "", out.stdout
        assert len(out.stderr.strip().splitlines()) == 1 and why in out.stderr, out.stderr
        assert not other.exists()  # the other report is not written either


def test_student_refuses_to_write_handouts_over_or_inside_the_source(tmp_path):
    source = tmp_path / "notebooks"
    source.mkdir()
    (source / "hw.ipynb").write_text(json.dumps(INSTRUCTOR))
    before = (source / "hw.ipynb").read_bytes()
    for out_dir in (source, source / "handout", Path(str(source) + "/.")):
        out = subprocess.run([sys.executable, "-m", "minitorchnn.course", "student", str(source), str(out_dir)],
                             capture_output=True, text=True)
        assert out.returncode == 2 and out.stdout == ""
        assert len(out.stderr.strip().splitlines()) == 1 and "source folder" in out.stderr, out.stderr
    assert (source / "hw.ipynb").read_bytes() == before and not (source / "handout").exists()


@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_timeout_that_is_not_positive_is_refused(value, source_dir, tmp_path):
    path = hand_in(tmp_path / "alice", "hw.ipynb", answered(INSTRUCTOR, RIGHT))
    out = grade_cli(path, "--source", source_dir, "--timeout", value)
    assert out.returncode == 2 and out.stdout == "" and "must be a whole number above 0" in out.stderr


@pytest.mark.parametrize("target", ["instructor", "/dev/zero"])
def test_symlinked_submissions_are_refused(target, source_dir, tmp_path):
    link = tmp_path / "alice" / "hw.ipynb"
    link.parent.mkdir()
    link.symlink_to(source_dir / "hw.ipynb" if target == "instructor" else target)
    out = grade_cli(link, "--source", source_dir)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip() == f"error: {link} is a symbolic link: refused (hand in the notebook itself)"
    device = grade_cli("/dev/zero", "--source", source_dir)
    assert device.returncode == 2 and device.stderr.strip() == "error: /dev/zero is not a regular file: refused"


MALFORMED = {
    "cells of numbers": ({"cells": [1, 2]}, "cell 0 is a int, not a cell"),
    "metadata a list": ({**INSTRUCTOR, "metadata": []}, "its metadata is not a mapping"),
    "grade_id a list": (None, "cell 1's grade_id is a list, not text"),
    "source a number": (None, "cell 0's source is a int, not text"),
    "not json": ("print('hello')", "is not a notebook: Expecting value"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_notebooks_are_one_line_errors_naming_the_file(case, source_dir, tmp_path):
    notebook, why = MALFORMED[case]
    if case == "grade_id a list":
        notebook = copy.deepcopy(INSTRUCTOR)
        notebook["cells"][1]["metadata"]["nbgrader"]["grade_id"] = ["ex1"]
    elif case == "source a number":
        notebook = copy.deepcopy(INSTRUCTOR)
        notebook["cells"][0]["source"] = 42
    path = tmp_path / "alice" / "hw.ipynb"
    path.parent.mkdir()
    path.write_text(notebook if isinstance(notebook, str) else json.dumps(notebook))
    out = grade_cli(path, "--source", source_dir)
    assert out.returncode == 2 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stderr.startswith(f"error: {path} is not a ") and why in out.stderr, out.stderr


def test_bad_submissions_are_one_line_errors_with_exit_code_2(source_dir, tmp_path):
    unknown = hand_in(tmp_path / "alice", "hw.ipynb", renamed(INSTRUCTOR, "zz"))
    removed = course.student_notebook(INSTRUCTOR)
    del removed["cells"][5]
    cases = [(unknown, r"error: .*hw\.ipynb: its exercises \['zz1', 'zz2', 'zz3'\] match no instructor notebook"),
             (hand_in(tmp_path / "bob", "hw.ipynb", removed),
              r"error: .*hw\.ipynb: its solution cells \['ex1', 'ex2'\] do not match the instructor's \['ex1', 'ex2', 'ex3'\]")]
    for path, message in cases:
        out = grade_cli(path, "--source", source_dir)
        assert out.returncode == 2 and out.stdout == "" and len(out.stderr.strip().splitlines()) == 1
        assert re.match(message, out.stderr.strip()), out.stderr


# 9. Output is capped

def grade_measured(path: Path, source_dir: Path) -> tuple[float, float]:
    """(points, the grader's peak memory in MB), grading in a fresh process."""
    code = (f"import json, resource; from minitorchnn.course import grading; "
            f"g = grading.grade({str(path)!r}, {str(source_dir)!r}, timeout=60); "
            f"print(json.dumps([g.points, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    points, max_rss_kb = json.loads(out.stdout.strip().splitlines()[-1])
    return points, max_rss_kb / 1000


def test_output_is_capped_and_the_grader_stays_small(source_dir, tmp_path):
    """400 MB printed at once and 2 MB in many lines: capped in the kernel, the loud but right answer scores.
    A submission that undoes the kernel's cap meets the grader's: its huge message is refused (so the checks
    after it cannot prove they ran), and the grader still stays small."""
    loud = body("""
print("x" * 400_000_000)
for i in range(20_000):
    print("y" * 100)
return 2 * x""")
    bypass = body("""
import sys
sys.stdout.write = type(sys.stdout).write.__get__(sys.stdout)
print("x" * 400_000_000)
return n * (n - 1) // 2""")
    for answers, expected in (({"ex1": loud}, 6), ({"ex3": bypass}, 5)):
        path = hand_in(tmp_path / "alice", "hw.ipynb", answered(INSTRUCTOR, {**RIGHT, **answers}))
        points, peak_mb = grade_measured(path, source_dir)
        assert points == expected
        assert peak_mb < 550, f"the grader grew to {peak_mb:.0f} MB"  # importing torch alone takes ~250 MB


# 10. Escape sequences

def test_escape_sequences_never_reach_the_terminal(source_dir, tmp_path):
    sneaky = body(r'raise AssertionError("\x1b[2K\r\x1b[32mpassed\x1b[0m\x1b]0;title\x07 \u202eok")')
    path = hand_in(tmp_path / "alice\x1b[31m", "hw.ipynb", answered(INSTRUCTOR, {**RIGHT, "ex1": sneaky}))
    out = grade_cli(path, "--source", source_dir, "--json", tmp_path / "g.json")
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\r" not in out.stdout and "\u202e" not in out.stdout
    assert "AssertionError: passed ok" in out.stdout
    assert json.loads((tmp_path / "g.json").read_text())[0]["exercises"][0]["message"] == "AssertionError: passed ok"


# 11. Matched by exercises, not by file name

def test_submissions_are_matched_by_their_exercises_not_their_file_names(source_dir, tmp_path):
    index = grading.instructor_index(source_dir)
    for name in ("hw (1).ipynb", "alice_hw.ipynb", "homework.ipynb"):
        path = hand_in(tmp_path / "alice", name, answered(INSTRUCTOR, RIGHT))
        assert grading.prepare(path, source_dir, index=index).instructor == source_dir / "hw.ipynb"
    other = hand_in(tmp_path / "bob", "hw.ipynb", renamed(answered(INSTRUCTOR, RIGHT), "hx"))
    assert grading.prepare(other, source_dir, index=index).instructor == source_dir / "hw2.ipynb"
    twins = tmp_path / "twins"
    twins.mkdir()
    for name in ("a.ipynb", "b.ipynb"):
        (twins / name).write_text(json.dumps(INSTRUCTOR))
    out = grade_cli(other.parent.parent / "alice" / "homework.ipynb", "--source", twins)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert out.stderr.strip().endswith("homework.ipynb: ambiguous, its exercises match a.ipynb, b.ipynb")


def test_the_gradebook_has_a_row_per_student_with_every_notebook_and_the_totals(source_dir, tmp_path):
    folder = tmp_path / "inbox"
    hand_in(folder, "alice_hw.ipynb", answered(INSTRUCTOR, RIGHT))
    hand_in(folder, "alice_hw2.ipynb", renamed(answered(INSTRUCTOR, {**RIGHT, "ex2": "    return 0"}), "hx"))
    hand_in(folder, "bob_hw (1).ipynb", course.student_notebook(INSTRUCTOR))
    out = grade_cli(*sorted(folder.iterdir()), "--source", source_dir, "--student", r"/(?P<student>[a-z]+)_[^/]*$",
                    "--csv", tmp_path / "g.csv", "--jobs", 2, "--timeout", 30)
    assert out.returncode == 0, out.stderr
    rows = list(csv.reader((tmp_path / "g.csv").open()))
    assert rows == [
        ["student", "ex1", "ex2", "ex3", "hw points", "hx1", "hx2", "hx3", "hw2 points", "points", "max_points", "flags"],
        ["alice", "2", "3", "1", "6", "2", "0", "1", "3", "9", "12", ""],
        ["bob", "0", "0", "0", "0", "", "", "", "", "0", "12", ""]]
    twice = grade_cli(folder / "alice_hw.ipynb", folder / "bob_hw (1).ipynb", "--source", source_dir)
    assert twice.returncode == 2 and twice.stderr.strip().endswith(
        "are both inbox's hw.ipynb: hand in one (or name students with --student)")
