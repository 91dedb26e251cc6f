"""Fixed-shape batches: every batch has the same size (the last one padded with weight-0 rows), so
the jitted steps compile once."""
from __future__ import annotations

from typing import Iterator

import numpy as np


def num_batches(num_examples: int, batch_size: int) -> int:
  return -(-num_examples // batch_size)


def batches(ids: np.ndarray, labels: np.ndarray, batch_size: int, *, shuffle_seed: int | None = None,
            extra: dict[str, np.ndarray] | None = None) -> Iterator[dict[str, np.ndarray]]:
  """Yields dicts with 'ids', 'label', 'weight' (1 real, 0 padding) and 'index' (row in the split,
  used to key per-example randomness so that results do not depend on how a batch is sharded)."""
  n = len(labels)
  order = np.arange(n) if shuffle_seed is None else np.random.RandomState(shuffle_seed).permutation(n)
  extra = extra or {}
  for start in range(0, n, batch_size):
    rows = order[start:start + batch_size]
    real = len(rows)
    if real < batch_size:
      rows = np.concatenate([rows, np.zeros(batch_size - real, dtype=rows.dtype)])
    weight = np.zeros(batch_size, np.float32)
    weight[:real] = 1.0
    batch = {"ids": ids[rows], "label": labels[rows].astype(np.int32), "weight": weight,
             "index": rows.astype(np.int32)}
    for key, values in extra.items():
      batch[key] = values[rows]
    yield batch
