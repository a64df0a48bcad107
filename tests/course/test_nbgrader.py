"""nbgrader accepts the course notebooks: generate_assignment makes our student versions, autograde scores them."""
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from minitorchnn.course import handout as course

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
pytest.importorskip("nbgrader", reason="nbgrader is in the dev extras: pip install -e '.[dev]'")


def nbgrader(course_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CI": "true", "MINITORCHNN_PROGRESS": "0",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # its alembic
    out = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


@pytest.fixture(scope="module")
def course_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("nbgrader")
    (root / "nbgrader_config.py").write_text('c = get_config()\nc.CourseDirectory.course_id = "minitorchnn"\n')
    (root / "source" / "ps1").mkdir(parents=True)
    for path in NOTEBOOKS:
        shutil.copy(path, root / "source" / "ps1" / path.name)
    nbgrader(root, "generate_assignment", "ps1", "--force")
    return root


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_generate_assignment_makes_the_same_student_version_as_course_student(path, course_dir):
    theirs = json.loads((course_dir / "release" / "ps1" / path.name).read_text())
    ours = course.student_notebook(json.loads(path.read_text()))
    code = lambda nb: [course.cell_source(c) for c in nb["cells"] if c["cell_type"] == "code"]
    assert code(theirs) == code(ours)
    assert "raise NotImplementedError()" in "".join(code(theirs))


def test_autograde_scores_the_solution_full_and_the_stubs_zero(course_dir):
    for student, folder in (("alice", "release"), ("bob", "source")):  # alice hands in the stubs, bob the solutions
        (course_dir / "submitted" / student / "ps1").mkdir(parents=True)
        shutil.copy(course_dir / folder / "ps1" / "01_mlp.ipynb", course_dir / "submitted" / student / "ps1")
    nbgrader(course_dir, "autograde", "ps1", "--force")
    nbgrader(course_dir, "export", "--to", "grades.csv")
    scores = {row["student_id"]: float(row["raw_score"]) for row in csv.DictReader((course_dir / "grades.csv").open())}
    points = sum(c["metadata"]["nbgrader"].get("points", 0) for c in json.loads(NOTEBOOKS[0].read_text())["cells"]
                 if c["metadata"].get("nbgrader", {}).get("grade"))
    assert scores == {"alice": 0.0, "bob": float(points)}
