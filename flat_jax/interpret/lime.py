"""LIME word attributions (Ribeiro, Singh & Guestrin 2016) through the `lime` package, over any
prediction callable texts -> (N, C) probabilities (the attack bridge: LIME is black-box).

Texts are cleaned as the models see them and split on whitespace with bow=False, so feature i is
word position i (a repeated word gets one weight per occurrence, as aligned comparison needs); a
removed word becomes 'UNKWORDZ', which maps to <unk>. Every feature is kept in the local linear
model (feature_selection='none'): consistency ranks all words, not a selected few.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from flat_jax.data.text import clean_text, tokenize


def word_attributor_lime(
  predict_proba: Callable,
  num_classes: int,
  *,
  num_samples: int = 1000,
  max_words: int | None = None,
  seed: int = 1111,
) -> Callable:
  """texts -> list of (C, n_words) LIME weights of every class (first `max_words` words: the
  words the model reads)."""
  from lime.lime_text import LimeTextExplainer

  explainer = LimeTextExplainer(
    split_expression=r"\s+", bow=False, feature_selection="none", random_state=seed
  )

  def attribute(texts: Sequence[str]) -> list[np.ndarray]:
    out = []
    for text in texts:
      words = tokenize(clean_text(text))[:max_words]
      attr = np.zeros((num_classes, len(words)))
      if len(words) > 0:
        explanation = explainer.explain_instance(
          " ".join(words),
          predict_proba,
          labels=range(num_classes),
          num_features=len(words),
          num_samples=num_samples,
        )
        for label in range(num_classes):
          for feature, weight in explanation.as_map()[label]:
            attr[label, feature] = weight
      out.append(attr)
    return out

  return attribute
