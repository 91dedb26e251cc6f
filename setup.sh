#!/usr/bin/env bash
# Creates .venv in the project with the tested stack (constraints.txt). Idempotent: when pyproject.toml and this
# script are unchanged since the last successful run, it returns in well under a second.
set -euo pipefail
cd "$(dirname "$0")"
venv=.venv
stamp="$venv/.flat_jax_setup"
want=$(cat pyproject.toml constraints.txt setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  exit 0
fi
echo "[setup] installing the tested stack (constraints.txt) into $venv (first run takes a few minutes)" >&2
python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip setuptools wheel
# torch first, so nothing pulls PyPI's multi-GB CUDA build as a dependency: a local wheel when pip
# is configured with one (find-links, a local index), else the CPU build from PyTorch's own index.
# flat_jax's models never run on torch; TextAttack and transformers only need it importable.
if ! "$venv/bin/python" -m pip install --quiet --no-deps --no-index -c constraints.txt torch 2>/dev/null; then
  echo "[setup] torch from PyTorch's CPU index (https://download.pytorch.org/whl/cpu)" >&2
  "$venv/bin/python" -m pip install --quiet --no-deps -c constraints.txt torch \
    --index-url https://download.pytorch.org/whl/cpu
fi
"$venv/bin/python" -m pip install --quiet -c constraints.txt -e ".[test]"
"$venv/bin/python" -m pip check
# WordNet 3.0 for PWWS and the synonym space: Debian's packages (NLTK's download is not reachable).
if [ ! -f /usr/share/wordnet/data.noun ] || [ ! -f /usr/share/wordnet/index.sense ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq wordnet-base wordnet-sense-index >/dev/null
  elif ! "$venv/bin/python" -c "import nltk; nltk.data.find('corpora/wordnet')" 2>/dev/null; then
    # NLTK's own WordNet serves as well (macOS, conda, no root); without either the attacks fail
    echo "[setup] WordNet missing: install Debian's wordnet-base and wordnet-sense-index, or run" \
         "$venv/bin/python -c \"import nltk; nltk.download('wordnet')\"; then run setup.sh again" >&2
    exit 1
  fi
fi
echo "$want" > "$stamp"
echo "[setup] done" >&2
