"""Fixed-shape batches: every batch has the same size (the last one padded with weight-0 rows), so
the jitted steps compile once."""

from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np


def num_batches(num_examples: int, batch_size: int) -> int:
  return -(-num_examples // batch_size)


def batches(
  ids: np.ndarray,
  labels: np.ndarray,
  batch_size: int,
  *,
  shuffle_seed: int | None = None,
  extra: dict[str, np.ndarray] | None = None,
) -> Iterator[dict[str, np.ndarray]]:
  """Yields dicts with 'ids', 'label', 'weight' (1 real, 0 padding) and 'index' (row in the split,
  used to key per-example randomness so that results do not depend on how a batch is sharded)."""
  n = len(labels)
  order = (
    np.arange(n) if shuffle_seed is None else np.random.RandomState(shuffle_seed).permutation(n)
  )
  extra = extra or {}
  for start in range(0, n, batch_size):
    rows = order[start : start + batch_size]
    real = len(rows)
    if real < batch_size:
      rows = np.concatenate([rows, np.zeros(batch_size - real, dtype=rows.dtype)])
    weight = np.zeros(batch_size, np.float32)
    weight[:real] = 1.0
    batch = {
      "ids": ids[rows],
      "label": labels[rows].astype(np.int32),
      "weight": weight,
      "index": rows.astype(np.int32),
    }
    for key, values in extra.items():
      batch[key] = values[rows]
    yield batch


SEQUENCE_KEYS = ("ids", "word_ids", "adv_ids", "adv_word_ids", "replaced")  # (B, L) batch arrays


def length_buckets(max_length: int, step: int = 16) -> tuple[int, ...]:
  """Multiples of `step` below max_length, then max_length."""
  return tuple(range(step, max_length, step)) + (max_length,)


def trim_padding(
  batch: dict[str, np.ndarray], pad_id: int, buckets: tuple[int, ...]
) -> dict[str, np.ndarray]:
  """The batch with its sequence axis cut to the smallest bucket that holds every real piece of
  every text in it (twins included). For models whose output does not depend on padding beyond the
  attention mask (BERT, DeBERTa): same results, fewer padded positions, a few compiled shapes."""
  length = batch["ids"].shape[1]
  used = 0
  for key in ("ids", "adv_ids"):
    if key in batch:
      real = np.flatnonzero((batch[key] != pad_id).any(axis=0))
      used = max(used, int(real[-1]) + 1 if real.size else 0)
  keep = next((b for b in buckets if b >= used), length)
  if keep >= length:
    return batch
  return {k: v[:, :keep] if k in SEQUENCE_KEYS else v for k, v in batch.items()}


@dataclasses.dataclass(frozen=True)
class PaddingTrim:
  """trim_padding as a callable, with the real length of each text for length-ordered evaluation."""

  pad_id: int
  buckets: tuple[int, ...]

  def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return trim_padding(batch, self.pad_id, self.buckets)

  def lengths(self, ids: np.ndarray) -> np.ndarray:
    real = ids != self.pad_id
    return np.where(real.any(axis=1), ids.shape[1] - np.argmax(real[:, ::-1], axis=1), 0)


TWIN_KEYS = ("adv_ids", "adv_word_ids", "replaced", "has_adv")  # what only a row with a twin needs


def split_twins(batch: dict[str, np.ndarray], multiple: int) -> dict[str, dict[str, np.ndarray]]:
  """A training batch as two batches: "pairs", forwarded as (original, twin), holds every real row
  with an adversarial twin, filled up to a multiple of `multiple` rows with rows without one (their twin
  terms weigh 0, as in the whole batch); "singles", forwarded once with the twin arrays dropped,
  holds the other rows. The same rows and loss as the batch in B + |pairs| texts instead of 2B (most
  rows of an adversarial round have no twin). A part with no rows is left out; {"whole": batch}
  when the pairs part would be the whole batch."""
  twin = batch["has_adv"].astype(bool) & (batch["weight"] > 0)  # a last batch's padding copies rows
  size = len(twin)
  paired = -(-int(twin.sum()) // multiple) * multiple
  if paired >= size:
    return {"whole": batch}
  order = np.concatenate(
    [np.flatnonzero(twin), np.flatnonzero(~twin)]
  )  # stable: rows keep their order
  rows = {"pairs": order[:paired], "singles": order[paired:]}
  return {
    name: {k: v[r] for k, v in batch.items() if name == "pairs" or k not in TWIN_KEYS}
    for name, r in rows.items()
    if len(r)
  }
