"""Comprehensiveness and sufficiency of attributions on a model whose decisive word is known."""

import numpy as np

from flat_jax.interpret.faithfulness import perturbation_curves


def _model(texts):
  """Positive with probability 0.9 when 'excellent' is in the text, else 0.5."""
  p = np.array([0.9 if "excellent" in t.split() else 0.5 for t in texts])
  return np.stack([1 - p, p], axis=1)


TEXTS = [
  "the plot was thin but the acting was excellent",
  "an excellent cast in a long film",
  "excellent",
  "excellent work all round from everyone here",
]


def _attributions(decisive_first: bool):
  out = []
  for text in TEXTS:
    words = text.split()
    scores = np.linspace(0.5, 0.1, len(words))  # decreasing: earlier words rank first
    if decisive_first:
      scores[words.index("excellent")] = 1.0
    else:
      scores[words.index("excellent")] = -1.0
    out.append(np.stack([-scores, scores]))
  return out


def test_the_decisive_word_ranked_first_beats_a_random_ranking():
  good = perturbation_curves(_model, TEXTS, _attributions(True), ks=(1, 2, 3), seed=0)
  assert good["num_texts"] == 3  # a one-word text has nothing to delete
  # deleting the top word always removes 'excellent': drop 0.4 at every k
  np.testing.assert_allclose(good["comprehensiveness"], [0.4, 0.4, 0.4])
  np.testing.assert_allclose(good["sufficiency"], [0.0, 0.0, 0.0])  # keeping it keeps 0.9
  assert good["aopc_comprehensiveness"] > good["aopc_comprehensiveness_random"]
  assert good["aopc_sufficiency"] < good["aopc_sufficiency_random"]


def test_the_decisive_word_ranked_last_is_unfaithful():
  bad = perturbation_curves(_model, TEXTS, _attributions(False), ks=(1, 2, 3), seed=0)
  np.testing.assert_allclose(bad["comprehensiveness"], [0.0, 0.0, 0.0])
  np.testing.assert_allclose(bad["sufficiency"], [0.4, 0.4, 0.4])
  assert bad["aopc_comprehensiveness"] < bad["aopc_comprehensiveness_random"]


def test_texts_too_short_to_perturb_give_no_figures():
  assert perturbation_curves(_model, ["excellent"], [np.ones((2, 1))]) == {"num_texts": 0}
