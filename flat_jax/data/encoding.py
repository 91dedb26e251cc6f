"""Texts -> model inputs: the text side of the seam between the two model families.

Every model reads a text through a `TextEncoder`; nothing downstream (training rows, the attack
bridge, IG, the API) asks which family it is:

  max_length, pad_id        ids per text (padded), the id of padding
  trim                      a PaddingTrim for batches (word pieces), or None (fixed-length words)
  words(text)               the text's words: what attack records' positions and L_imp index
  encode(text)              one text's ids, unpadded (the attack bridge pads to its buckets)
  inputs(texts)             padded model inputs {"ids", ...}: the columns of a training row
  word_ids(inputs)          (N, L) each position's word index, NO_WORD at padding and specials

A word model reads one id per word (`WordEncoder`, a vocabulary); a word-piece model reads pieces,
each knowing its word (flat_jax.data.pieces.PieceEncoder, with the extra input column word_ids).
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, Sequence

import numpy as np

from flat_jax.data.batching import PaddingTrim
from flat_jax.data.text import clean_text, tokenize
from flat_jax.data.vocab import PAD_ID, Vocab

NO_WORD = -1  # word index of padding (and of a transformer's [CLS] and [SEP] pieces)
TEXT_COLUMNS = (
  "ids",
  "word_ids",
)  # the input columns a text may have (a training row's, a batch's)


class TextEncoder(Protocol):
  max_length: int
  pad_id: int
  trim: PaddingTrim | None

  def words(self, text: str) -> list[str]: ...
  def encode(self, text: str) -> list[int]: ...
  def inputs(self, texts: Sequence[str]) -> dict[str, np.ndarray]: ...
  def word_ids(self, inputs: dict[str, np.ndarray]) -> np.ndarray: ...


def word_present(word_ids: np.ndarray, num_words: int) -> np.ndarray:
  """(N, num_words): whether word w of each row has at least one position (was not truncated)."""
  present = np.zeros((len(word_ids), num_words), np.bool_)
  rows, cols = np.nonzero((word_ids >= 0) & (word_ids < num_words))
  present[rows, word_ids[rows, cols]] = True
  return present


class WordEncoder:
  """One id per word from the run's vocabulary (<unk> for words it lacks), `max_length` words."""

  pad_id = PAD_ID
  trim = None  # word batches keep max_length: the CNN's and LSTM's cost is small at any length

  def __init__(self, vocab: Vocab, max_length: int):
    self.vocab = vocab
    self.max_length = max_length

  @staticmethod
  def words(text: str) -> list[str]:
    return tokenize(clean_text(text))

  def encode(self, text: str) -> list[int]:
    return self.vocab.encode(clean_text(text), self.max_length)

  def inputs(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
    return {"ids": self.vocab.encode_batch([clean_text(t) for t in texts], self.max_length)[0]}

  def word_ids(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
    ids = inputs["ids"]
    return np.where(ids != PAD_ID, np.arange(ids.shape[-1], dtype=np.int32), NO_WORD).astype(
      np.int32
    )


@dataclasses.dataclass
class EncodedSplit:
  """A split as the model reads it: ids (N, L), labels (N,), and further columns by name (a
  word-piece model's word_ids; an adversarial round's adv_ids, has_adv, replaced)."""

  ids: np.ndarray
  labels: np.ndarray
  extra: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # e.g. adv_ids, has_adv

  def __len__(self) -> int:
    return len(self.labels)
