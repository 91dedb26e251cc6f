"""HotFlip (Ebrahimi et al., ACL 2018), word level, with candidates restricted to synonyms.

HotFlip ranks every substitution w_i -> w' of a text by the first-order estimate of the change in
the loss, (e(w') - e(w_i)) . dL/de_i, from one gradient of the loss at the text's word embeddings
(jax.grad through the attack bridge, flat_jax.attacks.bridge.WordGradients); a beam search (width
10) keeps the best texts and flips again.

What differs from TextAttack's stock HotFlipEbrahimi2017: the stock transformation ranks the whole
vocabulary and keeps one candidate (top_n=1), which its constraints (cosine >= 0.8, same part of
speech) then mostly reject (the paper made adversarial examples of 2% of SST-2's test set). Here
the candidates are the word's neighbours in the synonym space the embedding-swap attacks use
(TextFooler's 50 nearest, within the space's cosine threshold), so HotFlip stays a word-substitution
attack comparable with TextFooler and PWWS, and the gradient only orders them: each beam expands its
`top_n` best-ranked flips. The paper's other constraints stay: at most two words changed, no
stopwords, no word changed twice, the same part of speech (spaCy, as our TextFooler).

Word models only (LSTM, CNN): a word-piece model reads a substitute as another number of pieces,
for which the first-order estimate of one flip is not defined.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from flat_jax.data.text import clean_text, tokenize

MAX_WORDS = 2  # "one or two flips" (section 5 of the paper)
BEAM_WIDTH = 10  # "The adversary uses a beam size of 10"
TOP_N = 10  # flips each beam expands: as many as the beam holds
MAX_CANDIDATES = 50  # synonym-space neighbours per word, as TextFooler


def align_words(words: Sequence[str], tokens: Sequence[str]) -> list[int | None]:
  """For each of TextAttack's words, the position of the model token it is (None when the word
  reads as several tokens, e.g. a contraction, or as none). TextAttack's words drop punctuation
  that the model's tokens keep, so each word is looked for from the previous match on."""
  positions, cursor = [], 0
  for word in words:
    pieces = tokenize(clean_text(word))
    start = next(
      (
        j
        for j in range(cursor, len(tokens) - len(pieces) + 1)
        if pieces and list(tokens[j : j + len(pieces)]) == pieces
      ),
      None,
    )
    if start is not None:  # a multi-token word is stepped over, never matched inside
      cursor = start + len(pieces)
    positions.append(start if start is not None and len(pieces) == 1 else None)
  return positions


def first_order_scores(
  gradient: np.ndarray, current: np.ndarray, candidates: np.ndarray
) -> np.ndarray:
  """HotFlip's estimate of the loss change of each flip: (e(w') - e(w)) . dL/de."""
  return (candidates - current[None]) @ gradient


def gradient_synonym_swap(
  bridge, embedding, min_cos_sim: float, *, max_candidates: int = MAX_CANDIDATES, top_n: int = TOP_N
):
  """A TextAttack transformation: the `top_n` synonym flips of a text with the largest first-order
  loss increase, among the word's `max_candidates` nearest neighbours with cosine >= `min_cos_sim`
  (ranked within the synonyms, not cut by the cosine constraint afterwards: top_n flips that
  mostly fail it leave the beam nothing). `bridge.gradients` (a word model's WordGradients)
  supplies the gradient."""
  from textattack.transformations import WordSwapEmbedding

  gradients = bridge.gradients

  class GradientSynonymSwap(WordSwapEmbedding):
    def __init__(self):
      super().__init__(max_candidates=max_candidates, embedding=embedding)
      self.top_n = top_n

    def _get_transformations(self, current_text, indices_to_modify):
      words = current_text.words
      tokens, grad = gradients(current_text.text)
      positions = align_words(words, tokens)
      flips, scores = [], []
      for i in sorted(indices_to_modify):
        position = positions[i] if i < len(positions) else None
        if position is None:
          continue
        current_id = gradients.ids([tokens[position]])[0]
        # a flip the model would not see (both words read as <unk>) is no flip
        candidates = [
          c
          for c in self._get_replacement_words(words[i])
          if len(tokenize(clean_text(c))) == 1
          and c.lower() != words[i].lower()
          and embedding.get_cos_sim(words[i].lower(), c.lower()) >= min_cos_sim
          and gradients.ids(tokenize(clean_text(c)))[0] != current_id
        ]
        if not candidates:
          continue
        current = gradients.embeddings([tokens[position]])[0]
        table = gradients.embeddings([tokenize(clean_text(c))[0] for c in candidates])
        scores.extend(first_order_scores(grad[position], current, table).tolist())
        flips.extend((i, c) for c in candidates)
      order = np.argsort(-np.asarray(scores), kind="stable")[: self.top_n]
      return [current_text.replace_word_at_index(flips[k][0], flips[k][1]) for k in order]

    def extra_repr_keys(self):
      return super().extra_repr_keys() + ["top_n"]

  return GradientSynonymSwap()
