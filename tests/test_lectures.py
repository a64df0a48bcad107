"""Every loss a lecture quotes (a number with four decimals) is one its notebook printed or a committed
results/ table holds: a lecture cannot drift from the runs behind it."""
import csv
import functools
import json
import re
import statistics
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOUR_DECIMALS = r"(?<![\d.])\d+\.\d{4}(?!\d)"
EXTERNAL = {"1.4697": "nanoGPT's README, quoted with its source in lecture 05",
            "2.1701": "the makemore lectures' MLP, the anchor lectures 01 and 02 compare with",
            "2.1057": "the makemore lectures' BatchNorm MLP, the anchor of lecture 02",
            "1.9937": "the makemore WaveNet lecture's val, the anchor of lecture 04"}
LECTURES = sorted(p.stem for p in (ROOT / "lectures").glob("[0-9]*.md"))


@functools.cache
def notebook_outputs(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
                     for cell in cells for out in cell.get("outputs", []))


def results_numbers() -> set[str]:
    """Every four-decimal number in results/, CSV values rounded, and each variant's mean over seeds."""
    numbers = set()
    for path in (ROOT / "results").iterdir():
        numbers |= set(re.findall(FOUR_DECIMALS, path.read_text()))
        if path.suffix == ".csv":
            val = defaultdict(list)
            for row in csv.DictReader(path.open()):
                numbers |= {f"{float(row[split]):.4f}" for split in ("train", "val") if row.get(split)}
                val[row["variant"]].append(float(row["val"]))
            numbers |= {f"{statistics.mean(v):.4f}" for v in val.values()}
    return numbers


@functools.cache
def all_outputs() -> frozenset[str]:
    """Every four-decimal number a committed notebook printed, or results/ holds."""
    printed = set()
    for path in (ROOT / "notebooks").glob("[0-9]*.ipynb"):
        printed |= set(re.findall(FOUR_DECIMALS, notebook_outputs(path)))
    return frozenset(printed | results_numbers())


@pytest.mark.parametrize("name", LECTURES)
def test_every_number_of_the_lecture_comes_from_a_committed_output(name):
    lecture = (ROOT / "lectures" / f"{name}.md").read_text()
    own = ROOT / "notebooks" / f"{name}.ipynb"
    quoted = re.findall(FOUR_DECIMALS, lecture)
    assert quoted, f"lecture {name} quotes no numbers: is the pattern still right?"
    if own.exists():  # most of what a lecture quotes is its own notebook's output
        printed = set(re.findall(FOUR_DECIMALS, notebook_outputs(own)))
        assert len(set(quoted) & printed) >= len(set(quoted)) // 2, f"lectures/{name}.md quotes little of its notebook"
    missing = sorted(set(quoted) - all_outputs() - set(EXTERNAL))
    assert not missing, f"lectures/{name}.md quotes {missing}, found in no committed notebook output or results/"


def test_every_number_of_the_readme_comes_from_a_committed_output():
    quoted = set(re.findall(FOUR_DECIMALS, (ROOT / "README.md").read_text()))
    missing = sorted(quoted - all_outputs() - set(EXTERNAL))
    assert not missing, f"README.md quotes {missing}, found in no committed notebook output or results/"
