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

KEEP_RULES = ("successful", "perturbed")


def attack_indices(num_train: int, num_examples: int, seed: int, round_index: int) -> list[int]:
  """Training rows attacked in a round: all of them (num_examples 0 or >= the split), else a
  seeded random sample, fresh each round as the authors shuffle before every attack."""
  if not num_examples or num_examples >= num_train:
    return list(range(num_train))
  rng = np.random.RandomState(seed * 1000 + round_index)
  return sorted(rng.choice(num_train, size=num_examples, replace=False).tolist())


def kept_records(records: Sequence[dict], keep: str) -> list[dict]:
  """'successful': only attacks that flipped the prediction (TextAttack's trainer);
  'perturbed': every result whose text changed, failed attacks included (the authors' release)."""
  if keep == "successful":
    return [r for r in records if r["status"] == "successful"]
  if keep == "perturbed":
    return [r for r in records if r["status"] != "skipped" and r["perturbed"] != r["original"]]
  raise ValueError(f"attack.keep must be one of {KEEP_RULES}, not {keep!r}")


def substitute_words(records: Sequence[dict]) -> list[str]:
  """The words the attacks put in, in order of first appearance (by example index)."""
  words = {}
  for record in sorted(records, key=lambda r: r["index"]):
    for _, _, substitute in record["replaced"]:
      words.setdefault(substitute, None)
  return list(words)


def augmented_split(train: EncodedSplit, records: Sequence[dict],
                    encode: Callable[[str], list[int]]) -> EncodedSplit:
  """`train` with the kept records' perturbed texts as twins of their originals.

  `encode` maps a raw text to ids the way the training data was encoded. Replaced positions come
  from the record's word alignment; for an attack that changed the number of words (Clare's
  insertions and merges) positions no longer line up, so such a twin gets CE but no L_imp."""
  n, length = train.ids.shape
  adv_ids = train.ids.copy()
  has_adv = np.zeros(n, np.bool_)
  replaced = np.zeros((n, length), np.bool_)
  for record in records:
    row = record["index"]
    encoded = encode(record["perturbed"])[:length]
    adv_ids[row] = PAD_ID
    adv_ids[row, :len(encoded)] = encoded
    has_adv[row] = True
    same_length = (len(tokenize(clean_text(record["original"])))
                   == len(tokenize(clean_text(record["perturbed"]))))
    if same_length:
      for position, _, _ in record["replaced"]:
        if position < length:
          replaced[row, position] = True
  replaced &= (train.ids != PAD_ID) & (adv_ids != PAD_ID)
  extra = {"adv_ids": adv_ids, "has_adv": has_adv, "replaced": replaced}
  return EncodedSplit(train.ids, train.labels, extra)
