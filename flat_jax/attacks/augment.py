"""The training set of an adversarial round: every clean training example, each paired with the
adversarial twin the round's attack produced for it (if one is kept).

A row (ids, adv_ids, has_adv, replaced) gives the objectives CE on the original, and for rows with a
twin CE on the twin and L_imp over the replaced positions, so the set is the paper's D u D'.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from flat_jax.data.text import clean_text, tokenize
from flat_jax.data.encoding import TEXT_COLUMNS, EncodedSplit, TextEncoder, word_present

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


def augmented_split(
  train: EncodedSplit, records: Sequence[dict], text: TextEncoder
) -> EncodedSplit:
  """`train` with the kept records' perturbed texts as twins of their originals, encoded by `text`
  as the training data was (its input columns; replaced positions are words). Replaced
  positions come from the record's word alignment; for an attack that changed the number of words
  (Clare's insertions and merges) positions no longer line up, so such a twin gets CE but no L_imp."""
  n, length = train.ids.shape
  columns = {k: v for k, v in {"ids": train.ids, **train.extra}.items() if k in TEXT_COLUMNS}
  twins = {f"adv_{k}": v.copy() for k, v in columns.items()}
  has_adv = np.zeros(n, np.bool_)
  replaced = np.zeros((n, length), np.bool_)
  if records:
    encoded = text.inputs([r["perturbed"] for r in records])
    if set(encoded) != set(columns):
      raise ValueError(
        f"the text encoder gave {sorted(encoded)}, the training split has {sorted(columns)}"
      )
    rows = np.array([r["index"] for r in records])
    for key, values in encoded.items():
      twins[f"adv_{key}"][rows] = values[:, :length]
    has_adv[rows] = True
  for record in records:
    same_length = len(tokenize(clean_text(record["original"]))) == len(
      tokenize(clean_text(record["perturbed"]))
    )
    if same_length:
      for position, _, _ in record["replaced"]:
        if position < length:
          replaced[record["index"], position] = True
  adv_columns = {k.removeprefix("adv_"): v for k, v in twins.items()}
  replaced &= word_present(text.word_ids(columns), length) & word_present(
    text.word_ids(adv_columns), length
  )
  extra = {**train.extra, **twins, "has_adv": has_adv, "replaced": replaced}
  return EncodedSplit(train.ids, train.labels, extra)
