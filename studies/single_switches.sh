#!/usr/bin/env bash
# Issue 19: the authors' switches that were only run as part of the whole protocol, each alone on
# our protocol (SST-2 CNN FLAT, frozen vectors, 2,000 attacked a round), evaluated at the temperature
# calibrated on dev (the default) like results/study_calibrated/. The interpretation is left out
# (eval.interpret=()) to save about 4 minutes a run: the factor table compares after-attack accuracy.
#
#   studies/single_switches.sh [SEED] [NAME ...]      (default: all three, seed 1111)
#
# Resumable workdirs RUNS/sst2_cnn_<name>_s<seed> (RUNS default runs/study); a finished run's
# results.json and config.json go to OUT/<name>/ (default results/study_calibrated).
set -uo pipefail
seed=${1:-1111}; shift $(( $# < 1 ? $# : 1 ))
runs=${RUNS:-runs/study}; out=${OUT:-results/study_calibrated}; py=${PYTHON:-.venv/bin/python}
declare -A flags=(
  [flat_keep_all]="--config.attack.keep=all"
  [flat_attack_training_mode]="--config.attack.model_mode=training"
  [flat_no_grow_vocab]="--config.attack.grow_vocab=False"
)
names=("$@"); [[ ${#names[@]} -gt 0 ]] || names=(flat_keep_all flat_attack_training_mode flat_no_grow_vocab)
mkdir -p "$runs"
for label in "${names[@]}"; do
  [[ -n "${flags[$label]:-}" ]] || { echo "unknown switch run $label" >&2; exit 2; }
  name=sst2_cnn_${label}_s$seed
  echo "[study $(date +%H:%M:%S)] $name" >&2
  if "$py" -m flat_jax.main --config configs/sst2_cnn.py --config.mode=flat ${flags[$label]} \
     --config.attack.workers=2 --config.attack.num_examples=2000 --config.eval.num_examples=500 \
     '--config.eval.attacks=("textfooler","pwws")' --config.eval.dev_examples=300 \
     '--config.eval.interpret=()' --config.seed=$seed --workdir $runs/$name > $runs/$name.log 2>&1; then
    mkdir -p $out/$name; cp $runs/$name/results.json $runs/$name/config.json $out/$name/
  else echo "[study] $name failed: see $runs/$name.log" >&2; fi
done
