"""Recipe settings that the config reaches: the embedding-swap candidates' cosine bound."""

import numpy as np
import pytest

from flat_jax.attacks import resources
from flat_jax.attacks.recipes import AttackResources, build_attack


@pytest.fixture(scope="module")
def wrapper():
  resources.prepare_textattack_environment()
  from textattack.models.wrappers import ModelWrapper

  class Uniform(ModelWrapper):
    model = None

    def __call__(self, texts):
      return np.full((len(texts), 2), 0.5, np.float32)

  return Uniform()


def _cosine_bounds(attack):
  from textattack.constraints.semantics import WordEmbeddingDistance

  return [
    (c.min_cos_sim, c.max_mse_dist)
    for c in attack.constraints
    if isinstance(c, WordEmbeddingDistance)
  ]


@pytest.mark.parametrize("recipe", ["textfooler", "gene", "iga"])
def test_synonym_min_cos_sets_the_bound_of_every_embedding_swap_recipe(wrapper, recipe):
  default = _cosine_bounds(build_attack(recipe, wrapper))
  assert default == [(resources.SYNONYM_MIN_COS, None)]
  loose = _cosine_bounds(build_attack(recipe, wrapper, AttackResources(synonym_min_cos=0.6)))
  assert loose == [(0.6, None)]


def test_more_candidates_under_a_looser_bound(wrapper, synonym_precision):
  """0.6 admits several times the calibrated bound's candidates (the official vectors' count)."""
  space = resources.load_synonym_embedding()
  tight = synonym_precision(space, resources.SYNONYM_MIN_COS)["candidates_per_word"]
  loose = synonym_precision(space, 0.6)["candidates_per_word"]
  assert loose > 3 * tight


def _encoders(attack):
  from flat_jax.attacks.resources.textattack_components import OfflineSentenceEncoder

  return [
    (c.backend, c.model_path) for c in attack.constraints if isinstance(c, OfflineSentenceEncoder)
  ]


@pytest.mark.parametrize("budget", ["", "textdefender"])
def test_sentence_encoder_setting_reaches_the_similarity_constraint(wrapper, tmp_path, budget):
  """attack.sentence_encoder picks the backend, or a SavedModel folder, of every USE constraint
  (a budget adds its own constraint: that one follows the setting too)."""
  for setting, expected in (("flax", ("flax", None)), ("numpy", ("numpy", None))):
    attack = build_attack(
      "textfooler", wrapper, AttackResources(sentence_encoder=setting, budget=budget)
    )
    assert set(_encoders(attack)) == {expected}
  attack = build_attack(
    "textfooler", wrapper, AttackResources(sentence_encoder=str(tmp_path), budget=budget)
  )
  assert {path for _, path in _encoders(attack)} == {str(tmp_path)}
