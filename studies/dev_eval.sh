#!/usr/bin/env bash
# Dev robustness of finished study runs (TextFooler on the shared 300-example dev sample, the
# selection set; test untouched), then their results.json refreshed in results/study:
#
#   studies/dev_eval.sh RUNS_DIR NAME [NAME ...]      e.g. sst2_cnn_flat_authors_s1111
#
# Needs flat_jax at fbae23b or later (stage=evaluate with eval.dev_examples).
set -uo pipefail
runs=${1:?runs directory}; shift
py=${PYTHON:-.venv/bin/python}
for name in "$@"; do
  d=$runs/$name
  grep -q '"status": "finished"' "$d/results.json" 2>/dev/null || { echo "$name: not finished" >&2; continue; }
  grep -q dev_after_attack "$d/results.json" && continue
  "$py" -m flat_jax.main --config configs/sst2_cnn.py --workdir "$d" --config.stage=evaluate \
    --config.eval.dev_examples=300 "--config.eval.attacks=()" --config.attack.workers=2 \
    > "$runs/$name.dev.log" 2>&1 || { echo "$name: failed, see $runs/$name.dev.log" >&2; continue; }
  mkdir -p "results/study/$name" && cp "$d/results.json" "$d/config.json" "results/study/$name/"
done
