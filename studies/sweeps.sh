#!/usr/bin/env bash
# The fidelity study's beta/gamma sweeps (issue 19), selected on dev robustness, resumable:
#
#   studies/sweeps.sh ours|authors|trainable RUNS_DIR
#
# ours: our protocol, at a reduced budget per point (1 round of TextFooler on a seeded 1,000
# training examples; the points share the base stage and round-1 attack, flat_jax.sweep does that);
# authors: protocol=authors (2 rounds, continuous: no shared prefix, each point a whole run).
# trainable: ours with trainable word vectors (model.freeze_embeddings=False, where adversarial
# training works on SST-2), plus the adv run at the same budget that FLAT's points must beat.
# Both: 300 dev examples (the shared sample) attacked per point; test is never touched.
set -euo pipefail
which=${1:?ours or authors}
runs=${2:?runs directory}
py=${PYTHON:-.venv/bin/python}
common=(--config configs/sst2_cnn.py --dev_examples 300 --parallel 1 --config.mode=flat
        --config.attack.workers=2 --config.attack.num_examples=1000)
case "$which" in
  ours) exec "$py" -m flat_jax.sweep "${common[@]}" --workdir "$runs/sst2_cnn_beta_gamma" \
          --grid flat.beta=1e-3,1e-2,1e-1,1 --grid flat.gamma=1e-3,1,100 --config.rounds=1 ;;
  authors) exec "$py" -m flat_jax.sweep "${common[@]}" --workdir "$runs/sst2_cnn_beta_gamma_authors" \
          --grid flat.beta=1e-2,1e-1,1,10 --grid flat.gamma=1e-3,1,100 --config.protocol=authors ;;
  trainable)
    "$py" -m flat_jax.main --config configs/sst2_cnn.py --config.mode=adv --config.rounds=1 \
        --config.model.freeze_embeddings=False --config.attack.workers=2 --config.attack.num_examples=1000 \
        --config.stage=train --config.eval.dev_examples=300 --workdir "$runs/sst2_cnn_trainable_adv_reference"
    exec "$py" -m flat_jax.sweep "${common[@]}" --workdir "$runs/sst2_cnn_beta_gamma_trainable" \
          --grid flat.beta=1e-3,1e-2,1e-1,1 --grid flat.gamma=1e-3,1,100 --config.rounds=1 \
          --config.model.freeze_embeddings=False ;;
  *) echo "ours, authors or trainable" >&2; exit 2 ;;
esac
