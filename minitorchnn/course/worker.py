"""`python -m minitorchnn.course.worker JOB.json`: grade one submission, for the grade command's --jobs.

JOB.json names the submission, the instructor's notebook it matched, the settings and the file to write the
grade to (JSON). The grade command runs one of these per submission, so that a crash costs only that one.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from . import grading
from ..fileio import write_atomic


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    prepared = grading.prepare(Path(job["submission"]), Path(job["source"]), instructor=Path(job["instructor"]))
    prepared.student = job["student"]
    grade = grading.grade(prepared.submission, Path(job["source"]), timeout=job["timeout"], full=job["full"],
                          prepared=prepared)
    write_atomic(Path(job["result"]), json.dumps(asdict(grade)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
