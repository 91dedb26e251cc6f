"""LIME through the lime package, and consistency over the pairs of an attack's records."""

import numpy as np
import pytest

from flat_jax.interpret.lime import word_attributor_lime
from flat_jax.interpret.pairs import counterpart_records, pair_consistency


def _count_model(word):
  """P(class 1) grows with the occurrences of `word`: a model whose LIME weights we know."""

  def predict(texts):
    p = np.array([min(0.95, 0.2 + 0.3 * t.split().count(word)) for t in texts])
    return np.stack([1 - p, p], 1)

  return predict


def test_lime_weights_one_per_word_position_for_every_class():
  attribute = word_attributor_lime(_count_model("good"), 2, num_samples=400, seed=3)
  (attr,) = attribute(["This good film is GOOD!"])  # cleaned: this good film is good !
  assert attr.shape == (2, 6)
  assert set(np.argsort(-attr[1])[:2]) == {1, 4}  # both occurrences, each its own feature
  assert attr[1, 1] > 0.2 and abs(attr[1, 0]) < 0.05
  np.testing.assert_allclose(attr[0], -attr[1], atol=1e-6)  # two classes mirror each other
  assert attribute(
    ["a b c"],
  )[0].shape == (2, 3)


def test_lime_reads_only_the_words_the_model_reads():
  (attr,) = word_attributor_lime(_count_model("good"), 2, num_samples=200, max_words=2)(
    ["x y good"]
  )
  assert attr.shape == (2, 2)


def _record(original, perturbed, status="successful"):
  return {"original": original, "perturbed": perturbed, "status": status}


def test_counterparts_leave_out_skipped_and_unchanged():
  records = [
    _record("a b", "a c"),
    _record("a b", "a b", "failed"),
    _record("a b", "a b", "skipped"),
    _record("a b", "x b", "failed"),
  ]
  assert counterpart_records(records) == [records[0], records[3]]


def test_consistency_counts_a_substitute_as_the_same_word():
  # attributions that depend on the position only: a substitution changes nothing
  by_position = lambda texts: [
    np.arange(len(t.split()), dtype=float)[None].repeat(2, 0) for t in texts
  ]
  records = [
    _record("the film is great", "the movie is terrific"),
    _record("a b c", "a b c", "skipped"),
  ]
  summary = pair_consistency(by_position, records)
  assert summary["num_pairs"] == 1 and summary["kendall_tau"] == pytest.approx(1.0)
  assert summary["topk_intersection"]["1"] == 1.0
  # attributions by word identity: the substituted words lose their rank
  lexicon = {"great": 5.0, "film": 4.0}
  by_word = lambda texts: [
    np.array([[lexicon.get(w, 0.0) - 0.1 * i for i, w in enumerate(t.split())]]) for t in texts
  ]
  changed = pair_consistency(by_word, records)
  assert changed["kendall_tau"] < 0.5 and changed["topk_intersection"]["1"] == 0.0
  assert pair_consistency(by_word, records[1:]) == {"num_pairs": 0}
