"""Interpretation consistency of a trained model on the original/adversarial pairs of an attack.

The pairs are the attacked test examples whose attack produced a different text (successful
attacks, and failed ones that still changed words): the paper evaluates "all test examples and
their adversarial counterparts". Skipped examples (already misclassified) have no counterpart, and
an unchanged text would score a trivial perfect consistency.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from flat_jax.data.text import clean_text, tokenize
from flat_jax.interpret import consistency
from flat_jax.interpret.ig import attributions_by_class, make_integrated_gradients, merge_to_words


def counterpart_records(records: Sequence[dict]) -> list[dict]:
  return [r for r in records if r["status"] != "skipped" and r["perturbed"] != r["original"]]


def word_attributor_ig(trained, *, steps: int = 50, batch_size: int = 32) -> Callable:
  """texts -> list of (C, n_words) IG attributions of every class for a TrainedModel (the word
  mask, if any, in inference mode), over the model's `ig_inputs` (word models and BERT: the word
  or piece embeddings; DeBERTa: the embedding-layer output) of the real positions ([CLS], [SEP] and
  padding stay fixed); a word's attribution is the sum over its positions (its pieces). Batches
  have one fixed shape (word models) or a few (word pieces, trimmed): few compiles. A model with
  `ig_rows` takes the path points through the gradient in chunks of that many rows."""
  model, params, text = trained.model, trained.params, trained.text
  embed_fn = lambda p, ids: model.apply({"params": p}, ids, method=model.ig_inputs)
  logits_fn = lambda p, e, ids, m: model.apply(
    {"params": p}, e, ids, method=model.classify_ig_inputs
  )["logits"]
  chunk = {}
  if model.ig_rows:
    batch_size = min(batch_size, model.ig_rows)
    chunk = {"batch_chunk": max(1, model.ig_rows // batch_size)}
  ig = make_integrated_gradients(embed_fn, logits_fn, steps=steps, **chunk)

  def attribute(texts: Sequence[str]) -> list[np.ndarray]:
    out = []
    for start in range(0, len(texts), batch_size):
      part = list(texts[start : start + batch_size])
      inputs = text.inputs(part + [part[-1]] * (batch_size - len(part)))
      if text.trim is not None:
        inputs = text.trim(inputs)  # a few shapes, far less padding
      ids, word_ids = inputs["ids"], text.word_ids(inputs)
      attr = np.asarray(
        attributions_by_class(
          ig, params, jnp.asarray(ids), jnp.asarray(word_ids >= 0), trained.num_classes
        )
      )
      words = merge_to_words(attr, word_ids[:, None, :], ids.shape[1])
      for row in range(len(part)):
        out.append(words[row, :, : int(word_ids[row].max()) + 1])
    return out

  return attribute


def pair_consistency(
  attribute: Callable, records: Sequence[dict], *, desc: str = "consistency", chunk: int = 64
) -> dict:
  """Kendall's tau and top-k intersection (k = 1..10), per class and averaged over classes, then
  over the pairs; words compared by aligned position so a substitute counts as the same word.
  `attribute(texts) -> [(C, n_words)]` is any word-level attribution method (IG, LIME)."""
  pairs = counterpart_records(records)
  if not pairs:
    return {"num_pairs": 0}
  scores = []
  with tqdm(total=len(pairs), desc=desc, disable=None, mininterval=2.0) as bar:
    for start in range(0, len(pairs), chunk):
      part = pairs[start : start + chunk]
      orig = attribute([r["original"] for r in part])
      adv = attribute([r["perturbed"] for r in part])
      for record, a, b in zip(part, orig, adv):
        alignment = consistency.align_positions(
          tokenize(clean_text(record["original"]))[: a.shape[1]],
          tokenize(clean_text(record["perturbed"]))[: b.shape[1]],
        )
        if alignment:
          scores.append(consistency.pair_consistency(a, b, alignment=alignment))
      bar.update(len(part))
  summary = consistency.summarize(scores)
  summary["num_pairs"] = len(scores)
  return summary
