"""The graded notebooks: student versions keep no solution, still compile, and every check fails on the stub."""
import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minitorchnn.course import handout as course

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9]*.ipynb"))


def code_cells(notebook: dict) -> list[str]:
    return [course.cell_source(c) for c in notebook["cells"] if c["cell_type"] == "code"]


def solution_blocks(source: str) -> list[str]:
    blocks, rest = [], source
    while course.BEGIN in rest:
        start = rest.index(course.BEGIN) + len(course.BEGIN)
        end = rest.index(course.END, start)
        blocks.append(rest[start:end].strip())
        rest = rest[end + len(course.END):]
    return blocks


def test_strip_solutions_keeps_indentation_and_everything_outside_the_markers():
    source = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x * 2\n    ### END SOLUTION\nprint(f)\n"
    assert course.strip_solutions(source) == (
        "def f(x):\n    y = 1\n    # YOUR CODE HERE\n    raise NotImplementedError()\nprint(f)\n")
    with pytest.raises(ValueError, match="unbalanced solution markers"):
        course.strip_solutions("### BEGIN SOLUTION\nx = 1\n")


def test_there_are_graded_notebooks():
    assert len(NOTEBOOKS) >= 3
    for path in NOTEBOOKS:
        cells = code_cells(json.loads(path.read_text()))
        assert sum(course.BEGIN in c for c in cells) >= 2, f"{path.name} has fewer than 2 exercises"


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    written = course.write_student_versions(NOTEBOOKS[0].parent, out)
    assert [p.name for p in written if p.suffix == ".ipynb"] == [p.name for p in NOTEBOOKS]
    # the committed files the notebooks read, copied beside the handouts so that they run anywhere
    assert sorted(p.relative_to(out).as_posix() for p in written if p.suffix != ".ipynb") == [
        "experiments/loss_analysis.toml", "experiments/wavenet_log.toml", "results/lecture_size_h200.txt",
        "results/nanogpt_defaults.csv", "results/sgd_sweep.csv", "results/wavegpt_3seeds_lr1e-3.csv",
        "results/wavegpt_ablation.csv", "results/wavegpt_final.csv", "results/wavegpt_final_runs.json",
        "results/wavegpt_lr_sweep.csv", "results/wavegpt_summary_design.json"]
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_version_has_no_solution_compiles_and_has_no_outputs(path, student_dir):
    teacher = json.loads(path.read_text())
    student = json.loads((student_dir / path.name).read_text())
    student_code = "\n".join(code_cells(student))
    assert course.BEGIN not in student_code and course.END not in student_code
    blocks = [b for c in code_cells(teacher) for b in solution_blocks(c)]
    for block in blocks:
        assert block not in student_code, f"solution text left in the student version:\n{block}"
    assert student_code.count("raise NotImplementedError()") == len(blocks)
    for i, source in enumerate(code_cells(student)):
        compile(source, f"{path.name}[{i}]", "exec")
    for cell in student["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
    assert [c["cell_type"] for c in student["cells"]] == [c["cell_type"] for c in teacher["cells"]]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_check_passes_on_the_solution_and_fails_on_the_stub(path, monkeypatch):
    monkeypatch.setenv("CI", "true")
    monkeypatch.chdir(path.parent)
    cells = code_cells(json.loads(path.read_text()))
    setup = cells[0]
    exercises = [i for i, c in enumerate(cells) if course.BEGIN in c]
    for i in exercises:
        check = cells[i + 1]
        assert check.startswith("# Check"), f"the cell after exercise cell {i} of {path.name} is not a check"
        namespace: dict = {}
        exec(compile(setup, "setup", "exec"), namespace)
        exec(compile(cells[i], "solution", "exec"), namespace)
        exec(compile(check, "check", "exec"), namespace)  # passes with the solution
        stub = course.strip_solutions(cells[i])
        exec(compile(stub, "stub", "exec"), namespace)
        with pytest.raises((NotImplementedError, AssertionError)):
            exec(compile(check, "check", "exec"), namespace)


def test_student_command_line(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "minitorchnn.course", "student", str(NOTEBOOKS[0].parent),
                             str(tmp_path / "out")], capture_output=True, text=True, check=True)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    assert result.stdout.count(".ipynb") == len(NOTEBOOKS)
    missing = subprocess.run([sys.executable, "-m", "minitorchnn.course", "student", str(tmp_path / "none"),
                              str(tmp_path / "x")], capture_output=True, text=True)
    assert missing.returncode == 1 and missing.stderr.startswith("error: no .ipynb notebooks in")


@pytest.mark.parametrize("env_ci, expected", [(None, "true"), ("false", "false"), ("true", "true")])
def test_the_readme_test_command_runs_the_notebooks_short_unless_ci_is_set(env_ci, expected):
    """notebooks/conftest.py makes plain `python -m pytest` run the notebooks short; an explicit CI wins."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if env_ci is not None:
        env["CI"] = env_ci
    conftest = NOTEBOOKS[0].parent / "conftest.py"
    code = f"import os, runpy; runpy.run_path({str(conftest)!r}); print(os.environ['CI'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected


def solution_lines(source: str) -> int:
    """Non-blank lines between the solution markers of one exercise cell, every block counted."""
    return sum(1 for block in solution_blocks(source) for line in block.splitlines() if line.strip())


def written_by_the_student(path: Path) -> set[str]:
    """The classes and functions an exercise cell of the notebook defines: what the handout leaves as stubs."""
    names = set()
    for source in code_cells(json.loads(path.read_text())):
        if course.BEGIN in source:
            names |= {n.name for n in ast.parse(source).body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    return names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_grade_ids_are_unique(path):
    cells = json.loads(path.read_text())["cells"]
    ids = [c["metadata"]["nbgrader"]["grade_id"] for c in cells if "nbgrader" in c["metadata"]]
    assert len(ids) == len(set(ids)), f"{path.name}: grade ids repeat: {sorted(ids)}"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name[:2] in ("01", "02", "03", "04")], ids=lambda p: p.name)
def test_every_notebook_of_part_one_has_two_exercises_of_ten_lines(path):
    cells = json.loads(path.read_text())["cells"]
    sizes = [solution_lines(course.cell_source(c)) for c in cells if course.BEGIN in course.cell_source(c)]
    assert sum(n >= 10 for n in sizes) >= 2, f"{path.name}: solution lines per exercise {sizes}"


def test_the_student_writes_the_framework_of_part_one_and_the_gpt_of_part_two():
    part_one = set().union(*(written_by_the_student(p) for p in NOTEBOOKS if p.name[:2] in ("01", "02", "03", "04")))
    assert {"Linear", "Embedding", "Tanh", "BatchNorm1d", "LayerNorm1d", "FlattenConsecutive",
            "Sequential"} <= part_one, sorted(part_one)
    part_two = set().union(*(written_by_the_student(p) for p in NOTEBOOKS if p.name[:2] >= "05"))
    # the GPT's pieces; the convolution wired into a block; the paired statistic over seeds; synchronised
    # BatchNorm's backward pass
    assert {"Dropout", "FeedForward", "Block", "GPT", "generate", "CanonBlock", "paired_difference",
            "sync_batchnorm_backward"} <= part_two, sorted(part_two)
