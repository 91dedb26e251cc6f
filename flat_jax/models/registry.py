"""Which family of models each model name belongs to: the one place that knows.

A family is a module flat_jax.models.<family> with a class `Family` that reads a run's texts (its
`text`, a flat_jax.data.encoding.TextEncoder), builds and initialises the model, saves what a workdir
needs to rebuild it and loads it back (flat_jax/models/word_family.py is the model to follow). A new
family is one new module and one line in FAMILIES (and its preset lengths, if it has any).

Importing this module is light (no JAX, no Flax): the config reads it.
"""

from __future__ import annotations

import importlib

FAMILIES = {
  "lstm": "word_family",
  "cnn": "word_family",
  "bert": "piece_family",
  "deberta": "piece_family",
}

# data.max_length of the presets, per family and dataset (none: the preset's own). Word pieces,
# [CLS] and [SEP] included: on SST-2 99% of the training texts take at most 52 MiniLM pieces and
# the longest 66; TREC 27 and 41.
PRESET_LENGTHS = {"piece_family": {"sst2": 64, "imdb": 256, "agnews": 64, "trec": 32}}


def family(model_name: str):
  """The Family class that builds `model_name`."""
  if model_name not in FAMILIES:
    raise ValueError(f"unknown model {model_name!r}; expected one of {sorted(FAMILIES)}")
  return importlib.import_module(f"flat_jax.models.{FAMILIES[model_name]}").Family
