"""Kendall's tau and top-k intersection on hand-made attribution pairs with known answers."""

import json

import numpy as np
import pytest

from flat_jax.interpret.consistency import (
  align_positions,
  kendall_tau,
  pair_consistency,
  summarize,
  top_k_positions,
  topk_intersection,
)


def test_kendall_tau_known_values():
  a = [0.1, 0.4, -0.2, 0.9, 0.3]
  assert kendall_tau(a, a) == pytest.approx(1.0)
  assert kendall_tau(a, [-x for x in a]) == pytest.approx(-1.0)
  # one swapped neighbour pair of 6: (5 concordant - 1 discordant) / 6
  assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
  # tau-b with a tie on one side: 5 concordant, 0 discordant, 1 tied of 6 pairs
  assert kendall_tau([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(5 / np.sqrt(5 * 6))
  # only the ranking matters, not the scale
  assert kendall_tau([1, 2, 3], [10, 200, 3000]) == pytest.approx(1.0)


def test_kendall_tau_degenerate_inputs():
  assert kendall_tau([0.7], [-0.2]) == 1.0  # one word: nothing to disagree on
  assert kendall_tau([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]) == 1.0
  assert kendall_tau([0.0, 0.0, 0.0], [0.1, 0.2, 0.3]) == 0.0
  with pytest.raises(ValueError, match="align"):
    kendall_tau([1, 2, 3], [1, 2])
  with pytest.raises(ValueError):
    kendall_tau([], [])


def test_topk_substitute_counts_as_same_word():
  # "the movie is terrible" vs "the film is awful": positions 1 and 3 are substitutes
  orig = [0.1, 0.3, 0.0, 0.9]
  adv = [0.05, 0.2, 0.1, 0.8]
  assert topk_intersection(orig, adv, 1) == 1.0
  assert topk_intersection(orig, adv, 2) == 1.0
  assert topk_intersection(orig, adv, 3) == pytest.approx(2 / 3)
  assert topk_intersection(orig, adv, 10) == 1.0  # k capped at 4 words
  with pytest.raises(ValueError):
    topk_intersection(orig, adv, 0)


def test_topk_ties_and_signed_ranking():
  # ties go to the earlier position on both sides
  np.testing.assert_array_equal(top_k_positions([0.5, 0.5, 0.1], 2), [0, 1])
  assert topk_intersection([0.5, 0.5, 0.1], [0.5, 0.2, 0.5], 1) == 1.0
  assert topk_intersection([0.5, 0.5, 0.1], [0.5, 0.2, 0.5], 2) == 0.5
  # ranked by signed value: a strongly negative word is not important for the class
  assert topk_intersection([-0.9, 0.1, 0.2], [0.9, 0.1, 0.2], 1) == 0.0


def test_pair_consistency_averages_over_classes():
  up, down = [1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]
  orig = np.array([up, up])
  adv = np.array([down, up])  # class 0 reversed (tau -1), class 1 identical (tau 1)
  result = pair_consistency(orig, adv, ks=(1, 2, 4))
  assert result["kendall_tau"] == pytest.approx(0.0)
  assert result["topk_intersection"] == pytest.approx({"1": 0.5, "2": 0.5, "4": 1.0})
  # one class given as a vector
  assert pair_consistency(up, up)["kendall_tau"] == pytest.approx(1.0)
  with pytest.raises(ValueError, match="classes"):
    pair_consistency(orig, adv[:1])


def test_pair_consistency_with_alignment():
  orig_tokens = "a great movie".split()
  adv_tokens = "a really great film".split()
  alignment = align_positions(orig_tokens, adv_tokens)
  orig = [0.1, 0.8, 0.3]
  adv = [0.1, 0.9, 0.7, 0.2]  # the inserted "really" (0.9) is left out
  result = pair_consistency(orig, adv, alignment=alignment)
  assert result["kendall_tau"] == pytest.approx(1.0)
  assert result["topk_intersection"]["1"] == 1.0


def test_summarize_matches_results_contract():
  rng = np.random.RandomState(0)
  pairs = [(rng.normal(size=(2, n)), rng.normal(size=(2, n))) for n in (3, 8, 15, 40)]
  summary = summarize(pairs)
  assert set(summary) == {"kendall_tau", "topk_intersection"}
  assert list(summary["topk_intersection"]) == [str(k) for k in range(1, 11)]
  assert all(isinstance(v, float) for v in summary["topk_intersection"].values())
  per_pair = [pair_consistency(o, a) for o, a in pairs]
  assert summary["kendall_tau"] == pytest.approx(np.mean([p["kendall_tau"] for p in per_pair]))
  assert summary["topk_intersection"]["5"] == pytest.approx(
    np.mean([p["topk_intersection"]["5"] for p in per_pair])
  )
  assert summarize(per_pair) == summary  # precomputed results work too
  json.dumps(summary, allow_nan=False)
  with pytest.raises(ValueError, match="no"):
    summarize([])


def test_align_positions():
  assert align_positions("the movie is bad".split(), "the film is awful".split()) == [
    (0, 0),
    (1, 1),
    (2, 2),
    (3, 3),
  ]
  assert align_positions("a great movie".split(), "a really great movie".split()) == [
    (0, 0),
    (1, 2),
    (2, 3),
  ]
  # a merge pairs the first merged word with the result
  assert align_positions("i can not stand it".split(), "i cannot stand it".split()) == [
    (0, 0),
    (1, 1),
    (3, 2),
    (4, 3),
  ]
