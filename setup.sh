#!/usr/bin/env bash
# Creates .venv in the project with the pinned stack. Idempotent: when pyproject.toml and this
# script are unchanged since the last successful run, it returns in well under a second.
set -euo pipefail
cd "$(dirname "$0")"
venv=.venv
stamp="$venv/.flat_jax_setup"
want=$(cat pyproject.toml setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  exit 0
fi
echo "[setup] installing the pinned stack into $venv (first run takes a few minutes)" >&2
python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip setuptools wheel
# torch first, pinned, so nothing pulls the multi-GB CUDA build as a dependency.
"$venv/bin/python" -m pip install --quiet "torch==2.13.0"
"$venv/bin/python" -m pip install --quiet -e ".[test]"
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
