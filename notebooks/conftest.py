"""`python -m pytest` runs the notebooks short, whatever the environment says.

Every notebook reads CI: CI=true trains each model for a few dozen steps, enough to check that every cell
still runs. nbval starts each notebook's kernel with this process's environment, so setting CI here, when
it is not set already, makes the README's plain `python -m pytest` finish in minutes instead of hours. A
student who opens a notebook in Jupyter has no CI set and gets the full-length run. The full-length check
is scripts/run_notebooks.sh (or `CI=false python -m pytest notebooks`).
"""
import os

os.environ.setdefault("CI", "true")
