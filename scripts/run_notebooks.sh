#!/usr/bin/env bash
# Regenerate the committed outputs of the course notebooks: a full-length run of each one, top to
# bottom in a fresh kernel. Outputs are never edited by hand; nbval in CI compares the tagged cells
# against what this writes.   Usage: scripts/run_notebooks.sh [notebooks/NN_name.ipynb ...]
set -euo pipefail
cd "$(dirname "$0")/.."
unset CI                       # full mode: CI=true would run the short version
export MINITORCHNN_PROGRESS=0  # no progress bars in the committed outputs
if [ "$#" -gt 0 ]; then notebooks=("$@"); else notebooks=(notebooks/[0-9]*.ipynb); fi
for nb in "${notebooks[@]}"; do
  start=$(date +%s)
  (cd "$(dirname "$nb")" && jupyter nbconvert --to notebook --execute --inplace \
     --ExecutePreprocessor.timeout=3600 --ExecutePreprocessor.kernel_name=python3 "$(basename "$nb")")
  echo "$nb: full run in $(( $(date +%s) - start )) s"
done
