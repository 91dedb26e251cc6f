"""Quality of adversarial examples on hand-built records whose answers are known."""

import numpy as np
import pytest

from flat_jax.attacks import quality, resources


def _record(original, perturbed, replaced, status="successful", fraction=0.25):
  return {
    "status": status,
    "original": original,
    "perturbed": perturbed,
    "replaced": [list(p) for p in replaced],
    "perturbed_fraction": fraction,
  }


RECORDS = [
  _record("the movie was great", "the film was great", [(1, "movie", "film")]),
  _record("the action was great", "the employment was great", [(1, "action", "employment")]),
  _record("the film was dull", "the film was slowly", [(3, "dull", "slowly")]),
  _record("skipped text", "skipped text", [], status="skipped"),
  _record("failed text here", "failed texts here", [(1, "text", "texts")], status="failed"),
]


class _Encoder:
  """Fixed vectors: the similarity of each pair is known."""

  def encode(self, sentences):
    table = {
      "the movie was great": [1, 0],
      "the film was great": [1, 0],
      "the action was great": [1, 0],
      "the employment was great": [0, 1],
      "the film was dull": [3, 4],
      "the film was slowly": [4, 3],
    }
    return np.asarray([table[s] for s in sentences], np.float32)


def test_each_metric_by_hand_with_stand_in_resources():
  synonyms = {"movie": {"film"}, "action": {"activity"}, "dull": {"boring"}}
  tags = {"slowly": "ADV"}
  examples = quality.per_example(
    RECORDS,
    encoder=_Encoder(),
    synonyms=lambda w: synonyms.get(w, set()),
    tagger=lambda lists: [[tags.get(w, "NOUN") for w in ws] for ws in lists],
  )
  assert len(examples) == 3  # successful attacks only
  np.testing.assert_allclose([e["similarity"] for e in examples], [1.0, 0.0, 24 / 25], atol=1e-6)
  assert [e["synonym_share"] for e in examples] == [1.0, 0.0, 0.0]
  assert [e["pos_agreement"] for e in examples] == [1.0, 1.0, 0.0]
  assert [e["words_changed"] for e in examples] == [1, 1, 1]
  summary = quality.summarize(examples)
  assert summary["num_examples"] == 3
  assert summary["synonym_share"]["mean"] == pytest.approx(1 / 3)
  assert summary["similarity"]["percentiles"]["50"] == pytest.approx(0.96)
  assert sum(summary["similarity"]["histogram"]["counts"]) == 3
  assert (
    summary["similarity"]["histogram"]["counts"][0] == 1
    and summary["similarity"]["histogram"]["counts"][-1] == 2
  )


def test_the_offline_resources_score_a_true_synonym_above_a_noisy_substitute():
  resources.prepare_textattack_environment()
  examples = quality.per_example(RECORDS)
  movie, action, adverb = examples
  assert movie["synonym_share"] == 1.0 and action["synonym_share"] == 0.0
  assert movie["pos_agreement"] == 1.0 and adverb["pos_agreement"] == 0.0  # ADJ -> ADV
  assert movie["similarity"] > action["similarity"] and 0.0 < movie["similarity"] <= 1.0


def test_no_adversarial_examples_summarise_as_empty():
  summary = quality.summarize(quality.per_example([RECORDS[3], RECORDS[4]]))
  assert summary["num_examples"] == 0 and summary["similarity"] == {"n": 0}
