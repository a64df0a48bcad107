#!/usr/bin/env bash
# Times the grader on a class of 10 submissions of notebook 01 (5 solved, 5 left as stubs, two of them saved
# as a browser names a second download), as the README reports it:  bash scripts/grade_a_class.sh [JOBS]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${1:-2}"
class="$(mktemp -d)"
trap 'rm -rf "$class"' EXIT
python -m minitorchnn.course student notebooks/ "$class/handout" >/dev/null
for i in 1 2 3 4 5 6 7 8 9 10; do
  mkdir -p "$class/student$i"
  name="01_mlp.ipynb"; [ $((i % 5)) -eq 0 ] && name="01_mlp (1).ipynb"
  if [ "$i" -le 5 ]; then cp notebooks/01_mlp.ipynb "$class/student$i/$name"; else cp "$class/handout/01_mlp.ipynb" "$class/student$i/$name"; fi
done
echo "$(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg), torch $(python -c 'import torch; print(torch.__version__)'), --jobs $jobs"
start=$(date +%s)
python -m minitorchnn.course grade "$class"/student*/*.ipynb --source notebooks/ --jobs "$jobs" --csv "$class/grades.csv" \
  | grep -E "^\[|NOT SANDBOXED" | sed "s#$class/##"
echo "10 submissions graded in $(( $(date +%s) - start )) s"
cut -d, -f1,2- "$class/grades.csv" | sed "s#$class/##" | head -12
