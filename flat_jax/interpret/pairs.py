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

from flat_jax.data.batching import PaddingTrim, length_buckets
from flat_jax.data.text import clean_text, tokenize
from flat_jax.data.vocab import PAD_ID
from flat_jax.interpret import consistency
from flat_jax.interpret.ig import attributions_by_class, make_integrated_gradients, merge_to_words


PIECE_ROWS = 128    # texts x path points per gradient evaluation of a transformer


def counterpart_records(records: Sequence[dict]) -> list[dict]:
  return [r for r in records if r["status"] != "skipped" and r["perturbed"] != r["original"]]


def word_attributor_ig(trained, *, steps: int = 50, batch_size: int = 32) -> Callable:
  """texts -> list of (C, n_words) IG attributions of every class for a TrainedModel (the word
  mask, if any, in inference mode). Batches have one fixed shape: one compile."""
  if trained.pieces is not None:
    return _piece_attributor_ig(trained, steps=steps, batch_size=batch_size)
  model, params, vocab = trained.model, trained.params, trained.vocab
  max_length = trained.config.data.max_length
  embed_fn = lambda p, ids: model.apply({"params": p}, ids, method=model.embed_tokens)
  logits_fn = lambda p, e, ids, m: model.apply({"params": p}, e, m, deterministic=True,
                                               method=model.classify_embedded)["logits"]
  ig = make_integrated_gradients(embed_fn, logits_fn, steps=steps)

  def attribute(texts: Sequence[str]) -> list[np.ndarray]:
    out = []
    for start in range(0, len(texts), batch_size):
      chunk = [clean_text(t) for t in texts[start:start + batch_size]]
      ids = vocab.encode_batch(chunk + [chunk[-1]] * (batch_size - len(chunk)), max_length)[0]
      attr = np.asarray(attributions_by_class(ig, params, jnp.asarray(ids), jnp.asarray(ids != PAD_ID),
                                              trained.num_classes))
      for row, text in enumerate(chunk):
        out.append(attr[row, :, :min(len(tokenize(text)), max_length)])
    return out

  return attribute


def _piece_attributor_ig(trained, *, steps: int, batch_size: int) -> Callable:
  """BERT/DeBERTa: IG over the model's `ig_inputs` (BERT: piece embeddings; DeBERTa: the
  embedding-layer output) of the real pieces ([CLS], [SEP] and padding stay fixed), a word's
  attribution the sum over its pieces. The path points go through the
  gradient in chunks of PIECE_ROWS rows: a transformer's activations are far larger than a CNN's."""
  model, params, pieces = trained.model, trained.params, trained.pieces
  embed_fn = lambda p, ids: model.apply({"params": p}, ids, method=model.ig_inputs)
  logits_fn = lambda p, e, ids, m: model.apply({"params": p}, e, ids,
                                               method=model.classify_ig_inputs)["logits"]
  batch_size = min(batch_size, PIECE_ROWS)
  trim = PaddingTrim(pieces.pad_id, length_buckets(pieces.max_length))
  ig = make_integrated_gradients(embed_fn, logits_fn, steps=steps,
                                 batch_chunk=max(1, PIECE_ROWS // batch_size))

  def attribute(texts: Sequence[str]) -> list[np.ndarray]:
    out = []
    for start in range(0, len(texts), batch_size):
      chunk = list(texts[start:start + batch_size])
      ids, word_ids = pieces.encode_batch(chunk + [chunk[-1]] * (batch_size - len(chunk)))
      cut = trim({"ids": ids, "word_ids": word_ids})      # a few shapes, far less padding
      ids, word_ids = cut["ids"], cut["word_ids"]
      attr = np.asarray(attributions_by_class(ig, params, jnp.asarray(ids), jnp.asarray(word_ids >= 0),
                                              trained.num_classes))
      words = merge_to_words(attr, word_ids[:, None, :], ids.shape[1])
      for row in range(len(chunk)):
        out.append(words[row, :, :int(word_ids[row].max()) + 1])
    return out

  return attribute


def pair_consistency(attribute: Callable, records: Sequence[dict], *, desc: str = "consistency",
                     chunk: int = 64) -> dict:
  """Kendall's tau and top-k intersection (k = 1..10), per class and averaged over classes, then
  over the pairs; words compared by aligned position so a substitute counts as the same word.
  `attribute(texts) -> [(C, n_words)]` is any word-level attribution method (IG, LIME)."""
  pairs = counterpart_records(records)
  if not pairs:
    return {"num_pairs": 0}
  scores = []
  with tqdm(total=len(pairs), desc=desc, disable=None, mininterval=2.0) as bar:
    for start in range(0, len(pairs), chunk):
      part = pairs[start:start + chunk]
      orig = attribute([r["original"] for r in part])
      adv = attribute([r["perturbed"] for r in part])
      for record, a, b in zip(part, orig, adv):
        alignment = consistency.align_positions(tokenize(clean_text(record["original"]))[:a.shape[1]],
                                                tokenize(clean_text(record["perturbed"]))[:b.shape[1]])
        if alignment:
          scores.append(consistency.pair_consistency(a, b, alignment=alignment))
      bar.update(len(part))
  summary = consistency.summarize(scores)
  summary["num_pairs"] = len(scores)
  return summary
