#!/usr/bin/env bash
# Issue 19: SST-2 CNN with uncapped round attacks (all 6,920 training examples each round, as the
# authors and our TREC runs; the fidelity study capped them at 2,000), evaluated at the temperature
# calibrated on dev (the default).
#
#   studies/uncapped.sh MODE [SEED [--config.k=v ...]]     (MODE: flat or adv; TAG=_x names a variant)
#
# A resumable workdir RUNS/sst2_cnn_<mode>_uncapped<TAG>_s<seed> (RUNS default runs/study); when it
# finishes its results.json and config.json go to OUT/<name>/ (default results/study_calibrated).
set -uo pipefail
mode=${1:?mode: flat or adv}; seed=${2:-1111}; shift $(( $# < 2 ? $# : 2 )); extra=("$@")
runs=${RUNS:-runs/study}; out=${OUT:-results/study_calibrated}; py=${PYTHON:-.venv/bin/python}
mkdir -p "$runs"
name=sst2_cnn_${mode}_uncapped${TAG:-}_s$seed
echo "[study $(date +%H:%M:%S)] $name" >&2
if "$py" -m flat_jax.main --config configs/sst2_cnn.py --config.mode=$mode --config.attack.num_examples=0 \
   --config.attack.workers=2 --config.eval.num_examples=500 '--config.eval.attacks=("textfooler","pwws")' \
   --config.eval.dev_examples=300 --config.seed=$seed "${extra[@]}" --workdir $runs/$name > $runs/$name.log 2>&1; then
  mkdir -p $out/$name; cp $runs/$name/results.json $runs/$name/config.json $out/$name/
else echo "[study] $name failed" >&2; fi
