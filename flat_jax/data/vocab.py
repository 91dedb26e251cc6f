"""Word vocabulary built from the training split, with <pad> = 0 and <unk> = 1."""

from __future__ import annotations

import collections
import json
import os
import pathlib
from typing import Iterable, Sequence

import numpy as np

from flat_jax.data.text import tokenize

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1


class Vocab:
  def __init__(self, words: Sequence[str]):
    if list(words[:2]) != [PAD, UNK]:
      raise ValueError("a vocabulary starts with <pad>, <unk>")
    self.words = list(words)
    self.index = {w: i for i, w in enumerate(self.words)}
    if len(self.index) != len(self.words):
      raise ValueError("duplicate words in vocabulary")

  @classmethod
  def build(cls, texts: Iterable[str], min_freq: int = 1) -> "Vocab":
    """Words seen at least `min_freq` times, most frequent first (ties alphabetical)."""
    counts = collections.Counter(tok for text in texts for tok in tokenize(text))
    kept = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
    return cls([PAD, UNK] + kept)

  def extended(self, words: Iterable[str]) -> "Vocab":
    """This vocabulary with the new ones of `words` appended (ids of existing words unchanged)."""
    new = [w for w in dict.fromkeys(words) if w not in self.index]
    return Vocab(self.words + new)

  def prefix(self, size: int) -> "Vocab":
    """The first `size` words: the vocabulary as it was before later extensions."""
    if not 2 <= size <= len(self.words):
      raise ValueError(f"vocabulary of {len(self.words)} words has no prefix of {size}")
    return Vocab(self.words[:size])

  def __len__(self) -> int:
    return len(self.words)

  def encode(self, text: str, max_length: int) -> list[int]:
    return [self.index.get(tok, UNK_ID) for tok in tokenize(text)[:max_length]]

  def encode_batch(self, texts: Sequence[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids padded (and truncated) to max_length, and the number of real tokens of each text."""
    ids = np.full((len(texts), max_length), PAD_ID, dtype=np.int32)
    lengths = np.zeros(len(texts), dtype=np.int32)
    for row, text in enumerate(texts):
      encoded = self.encode(text, max_length)
      ids[row, : len(encoded)] = encoded
      lengths[row] = len(encoded)
    return ids, lengths

  def decode(self, ids: Iterable[int]) -> list[str]:
    return [self.words[i] for i in ids if i != PAD_ID]

  def save(self, path) -> None:
    # atomically: a kill or a full disk mid-write leaves the previous vocabulary, not half of one
    tmp = pathlib.Path(f"{path}.tmp")
    try:
      with open(tmp, "w", encoding="utf-8") as f:
        json.dump(self.words, f, ensure_ascii=False)
      os.replace(tmp, path)
    except OSError as e:  # named: a buffered write's ENOSPC comes at close, without a filename
      tmp.unlink(missing_ok=True)
      if e.filename is None:
        raise OSError(e.errno, e.strerror, str(path)) from e
      raise

  @classmethod
  def load(cls, path) -> "Vocab":
    with open(path, encoding="utf-8") as f:
      return cls(json.load(f))
