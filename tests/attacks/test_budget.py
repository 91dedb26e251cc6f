"""The common attack budget (attack.budget=textdefender) on the small SST-2 CNN."""

import math

import pytest

from flat_jax.attacks import recipes, resources
from flat_jax.attacks.generate import AttackJob, current_records, attack_examples


@pytest.mark.parametrize("recipe", ["textfooler", "pwws"])
def test_textdefender_budget_builds_their_constraints(model_dir, recipe):
  resources.prepare_textattack_environment()
  from textattack.constraints.overlap import MaxWordsPerturbed
  from textattack.constraints.semantics import WordEmbeddingDistance
  from textattack.transformations import WordSwapEmbedding

  from flat_jax.attacks.bridge import PredictionBridge, textattack_wrapper
  from flat_jax.training.artifacts import load_trained

  wrapper = textattack_wrapper(PredictionBridge.from_trained(load_trained(model_dir)))
  attack = recipes.build_attack(recipe, wrapper, recipes.AttackResources(budget="textdefender"))
  assert (
    isinstance(attack.transformation, WordSwapEmbedding)
    and attack.transformation.max_candidates == 50
  )
  assert not any(isinstance(c, WordEmbeddingDistance) for c in attack.constraints)
  limits = [c for c in attack.constraints if isinstance(c, MaxWordsPerturbed)]
  assert [c.max_percent for c in limits] == [0.3]
  assert any(
    type(c).__name__ == "OfflineSentenceEncoder" and abs(c.threshold - 0.840845057) < 1e-9
    for c in attack.constraints
  )
  assert attack.goal_function.query_budget == 50
  with pytest.raises(ValueError, match="unknown attack budget"):
    recipes.build_attack(recipe, wrapper, recipes.AttackResources(budget="generous"))


def test_budgeted_records_stay_within_it_and_are_not_taken_for_unbudgeted_ones(
  model_dir, sst2_splits, tmp_path
):
  test = sst2_splits.test
  out = tmp_path / "tf.jsonl"
  job = AttackJob(str(model_dir), "textfooler", budget="textdefender")
  records = attack_examples(job, test.texts, test.labels, out, indices=range(8))
  from textattack.shared.utils import words_from_text

  for r in records:
    assert r["budget"] == "textdefender" and r["queries"] <= 50
    if r["status"] == "successful":  # TextAttack's words, its rounding up
      assert len(r["replaced"]) <= math.ceil(0.3 * len(words_from_text(r["original"])))
  assert current_records(out, AttackJob(str(model_dir), "textfooler")) == {}
  assert len(current_records(out, job)) == 8


def test_a_recipes_own_word_limit_stays_under_the_budget(model_dir):
  resources.prepare_textattack_environment()
  from textattack.constraints.overlap import MaxWordsPerturbed

  from flat_jax.attacks.bridge import PredictionBridge, textattack_wrapper
  from flat_jax.training.artifacts import load_trained

  wrapper = textattack_wrapper(PredictionBridge.from_trained(load_trained(model_dir)))
  attack = recipes.build_attack("hotflip", wrapper, recipes.AttackResources(budget="textdefender"))
  limits = {
    (c.max_num_words, c.max_percent) for c in attack.constraints if isinstance(c, MaxWordsPerturbed)
  }
  assert limits == {(2, None), (None, 0.3)}  # HotFlip's two words and the budget's 30%
