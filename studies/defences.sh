#!/usr/bin/env bash
# Issue 25: the embedding-space defences (modes pgd and freelb) beside base, adv and FLAT, at the
# reproduction's budget: seed 1111, after-attack accuracy on the first 500 test examples under
# TextFooler and PWWS (calibrated temperature), IG consistency.
#
#   studies/defences.sh RUNS_DIR
#
# Then their perturbation's scale on SST-2 (TextDefender's step sizes x10 and x30), selected on the
# after-attack accuracy of 300 dev examples (stage=train with eval.dev_examples: test untouched).
# Every run is a resumable workdir; re-running skips finished ones. Run from a fixed commit.
set -u
runs=${1:?runs directory}
py=${PYTHON:-.venv/bin/python}
common=(--config.attack.workers=2 --config.eval.num_examples=500 '--config.eval.attacks=("textfooler","pwws")' --config.seed=1111)
for ds in trec sst2; do
  for mode in pgd freelb; do
    "$py" -m flat_jax.main --config configs/${ds}_cnn.py --config.mode=$mode --config.rounds=0 "${common[@]}" \
      --workdir "$runs/${ds}_cnn_${mode}_s1111"
  done
done
for mode in pgd freelb; do   # with trainable word vectors, as the study's trainable-vector runs
  "$py" -m flat_jax.main --config configs/sst2_cnn.py --config.mode=$mode --config.rounds=0 "${common[@]}" \
    --config.model.freeze_embeddings=False --workdir "$runs/sst2_cnn_${mode}_trainable_emb_s1111"
done
# TREC adv (3 rounds of TextFooler on all of TREC's training set), the row TREC lacked
"$py" -m flat_jax.main --config configs/trec_cnn.py --config.mode=adv --config.rounds=3 "${common[@]}" \
  --workdir "$runs/trec_cnn_adv_s1111"
# the scale, on dev
for mode in pgd freelb; do
  "$py" -m flat_jax.main --config configs/sst2_cnn.py --config.stage=evaluate "${common[@]}" \
    --config.eval.dev_examples=300 --workdir "$runs/sst2_cnn_${mode}_s1111"
  for scale in 10 30; do
    "$py" -m flat_jax.main --config configs/sst2_cnn.py --config.mode=$mode --config.rounds=0 "${common[@]}" \
      --config.eval.dev_examples=300 --config.stage=train \
      --config.embedding_adversary.step_size=$(python3 -c "print(0.03*$scale)") \
      --config.embedding_adversary.init_magnitude=$(python3 -c "print(0.05*$scale)") \
      --workdir "$runs/sst2_cnn_${mode}_x${scale}_s1111"
  done
done
