"""The framework's size budget, checked in CI (.ci/run), as tinygrad's CI keeps its line count.

    python scripts/code_budget.py

Prints the lines of code in minitorchnn/nn/ (the framework a student reads: no blank lines, comments or
docstrings), its longest function, and every function of the package with more than 7 arguments (a
constructor whose arguments are its settings is allowed), and exits 1 when a budget is broken.
"""
from __future__ import annotations

import ast
import io
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORK = ROOT / "minitorchnn" / "nn"
LINE_BUDGET = 1000  # lines of code in minitorchnn/nn/ (890 at the layout redesign)
LONGEST_FUNCTION = 30  # lines, in minitorchnn/nn/
MOST_ARGUMENTS = 7  # in the whole package, constructors excepted


def code_lines(path: Path) -> int:
    """Lines holding code: not blank, not only a comment, not inside a docstring."""
    source = path.read_text()
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and \
                isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                            tokenize.ENDMARKER):
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return len(lines - docstrings)


def functions(path: Path):
    """(name, lines, arguments) of every function and method in a file; lines from def to its last line."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            bound = bool(args.args) and args.args[0].arg in ("self", "cls", "ctx")  # not an argument a caller gives
            n_args = len(args.posonlyargs) + len(args.args) + len(args.kwonlyargs) - bound
            yield f"{path.relative_to(ROOT)}:{node.lineno} {node.name}", node.end_lineno - node.lineno + 1, n_args


def main() -> int:
    total = sum(code_lines(p) for p in sorted(FRAMEWORK.glob("*.py")))
    longest = max((f for p in FRAMEWORK.glob("*.py") for f in functions(p)), key=lambda f: f[1])
    wide = [f for p in sorted((ROOT / "minitorchnn").rglob("*.py")) for f in functions(p)
            if f[2] > MOST_ARGUMENTS and not f[0].endswith("__init__")]
    print(f"minitorchnn/nn/: {total} lines of code (budget {LINE_BUDGET}); longest function {longest[0]}, "
          f"{longest[1]} lines (budget {LONGEST_FUNCTION})")
    for name, _, n in wide:
        print(f"  {name} takes {n} arguments (budget {MOST_ARGUMENTS})")
    return int(total > LINE_BUDGET or longest[1] > LONGEST_FUNCTION or bool(wide))


if __name__ == "__main__":
    sys.exit(main())
