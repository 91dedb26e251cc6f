"""The training set of an adversarial round: every clean training example, each paired with the
adversarial twin the round's attack produced for it (if one is kept).

A row (ids, adv_ids, has_adv, replaced) gives the objectives CE on the original, and for rows with a
twin CE on the twin and L_imp over the replaced positions, so the set is the paper's D u D'.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from flat_jax.data.text import clean_text, tokenize
from flat_jax.data.vocab import PAD_ID
from flat_jax.training.loop import EncodedSplit

KEEP_RULES = ("successful", "perturbed", "all")


def attack_indices(num_train: int, num_examples: int, seed: int, round_index: int) -> list[int]:
  """Training rows attacked in a round: all of them (num_examples 0 or >= the split), else a
  seeded random sample, fresh each round as the authors shuffle before every attack."""
  if not num_examples or num_examples >= num_train:
    return list(range(num_train))
  rng = np.random.RandomState(seed * 1000 + round_index)
  return sorted(rng.choice(num_train, size=num_examples, replace=False).tolist())


def kept_records(records: Sequence[dict], keep: str) -> list[dict]:
  """'successful': only attacks that flipped the prediction (TextAttack's trainer);
  'perturbed': every result whose text changed, failed attacks included;
  'all': every result's perturbed text, failed and skipped ones too (the authors' release: a
  skipped example's perturbed text is its original, which is then trained on twice)."""
  if keep == "successful":
    return [r for r in records if r["status"] == "successful"]
  if keep == "perturbed":
    return [r for r in records if r["status"] != "skipped" and r["perturbed"] != r["original"]]
  if keep == "all":
    return list(records)
  raise ValueError(f"attack.keep must be one of {KEEP_RULES}, not {keep!r}")


def substitute_words(records: Sequence[dict]) -> list[str]:
  """The words the attacks put in, in order of first appearance (by example index)."""
  words = {}
  for record in sorted(records, key=lambda r: r["index"]):
    for _, _, substitute in record["replaced"]:
      words.setdefault(substitute, None)
  return list(words)


def _word_present(word_ids: np.ndarray, num_words: int) -> np.ndarray:
  """(N, num_words): whether word w of each row has at least one piece (was not truncated away)."""
  present = np.zeros((len(word_ids), num_words), np.bool_)
  rows, cols = np.nonzero((word_ids >= 0) & (word_ids < num_words))
  present[rows, word_ids[rows, cols]] = True
  return present


def augmented_split(train: EncodedSplit, records: Sequence[dict],
                    encode_rows: Callable[[Sequence[str]], dict[str, np.ndarray]]) -> EncodedSplit:
  """`train` with the kept records' perturbed texts as twins of their originals.

  `encode_rows(texts)` encodes raw texts the way the training data was encoded: {"ids": (n, L)} for
  word models, plus "word_ids" for word-piece models (whose replaced positions are words). Replaced
  positions come from the record's word alignment; for an attack that changed the number of words
  (Clare's insertions and merges) positions no longer line up, so such a twin gets CE but no L_imp."""
  n, length = train.ids.shape
  columns = {"ids": train.ids, **{k: v for k, v in train.extra.items() if k == "word_ids"}}
  twins = {f"adv_{k}": v.copy() for k, v in columns.items()}
  has_adv = np.zeros(n, np.bool_)
  replaced = np.zeros((n, length), np.bool_)
  if records:
    encoded = encode_rows([r["perturbed"] for r in records])
    if set(encoded) != set(columns):
      raise ValueError(f"encode_rows gave {sorted(encoded)}, the training split has {sorted(columns)}")
    rows = np.array([r["index"] for r in records])
    for key, values in encoded.items():
      twins[f"adv_{key}"][rows] = values[:, :length]
    has_adv[rows] = True
  for record in records:
    same_length = (len(tokenize(clean_text(record["original"])))
                   == len(tokenize(clean_text(record["perturbed"]))))
    if same_length:
      for position, _, _ in record["replaced"]:
        if position < length:
          replaced[record["index"], position] = True
  if "word_ids" in columns:
    replaced &= _word_present(columns["word_ids"], length) & _word_present(twins["adv_word_ids"], length)
  else:
    replaced &= (train.ids != PAD_ID) & (twins["adv_ids"] != PAD_ID)
  extra = {**train.extra, **twins, "has_adv": has_adv, "replaced": replaced}
  return EncodedSplit(train.ids, train.labels, extra)
