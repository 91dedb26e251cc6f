"""flat_jax: FLAT (feature-level adversarial training, Chen & Ji, AAAI 2022) for text classifiers in
JAX/Flax.

    import flat_jax
    flat_jax.train("trec_cnn", "runs/trec")      # the whole procedure, as flat-jax --config trec_cnn
    model = flat_jax.load("runs/trec")
    model.predict(texts); model.explain(text); model.attack(texts, labels, recipe="pwws")

The API (flat_jax.api) is imported on first use, so `import flat_jax.config` and the other modules
stay light.
"""

from __future__ import annotations

import importlib
from importlib import metadata

try:
  __version__ = metadata.version("flat_jax")
except metadata.PackageNotFoundError:  # a checkout on sys.path, not installed
  __version__ = "0.1.0"

__all__ = ["Model", "get_config", "load", "train", "__version__"]


def __getattr__(name: str):
  if name in ("Model", "get_config", "load", "train"):
    return getattr(importlib.import_module("flat_jax.api"), name)
  raise AttributeError(f"module 'flat_jax' has no attribute {name!r}")
