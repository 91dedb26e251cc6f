"""Texts -> word pieces of a Hugging Face fast tokenizer, each piece knowing the word it came from.

A text's words are those of the word-level models (`tokenize(clean_text(text))`): the attack
records' replaced positions index these words, so the word-level L_imp of BERT and DeBERTa lines up
an original and its adversarial text word by word, whatever pieces each word splits into.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from flat_jax.data.batching import PaddingTrim, length_buckets
from flat_jax.data.encoding import NO_WORD
from flat_jax.data.text import clean_text, tokenize


class PieceEncoder:
  """A TextEncoder (flat_jax.data.encoding) for word-piece models. `max_length` counts pieces,
  [CLS] and [SEP] included; longer texts are truncated (a word cut in the middle keeps the pieces
  that fit and still counts as a word of the text)."""

  def __init__(self, tokenizer, max_length: int):
    if not getattr(tokenizer, "is_fast", False):
      raise ValueError(
        f"{type(tokenizer).__name__} is not a fast tokenizer: the piece -> word "
        f"alignment needs one (a checkpoint directory with tokenizer.json, or a "
        f"model type that has a fast tokenizer class)"
      )
    if tokenizer.pad_token_id is None:
      raise ValueError(f"{type(tokenizer).__name__} has no padding token")
    self.tokenizer = tokenizer
    self.max_length = max_length
    self.pad_id = int(tokenizer.pad_token_id)
    # batches are cut to the longest text in them: attention masks the padding
    self.trim = PaddingTrim(self.pad_id, length_buckets(max_length))

  @staticmethod
  def words(text: str) -> list[str]:
    return tokenize(clean_text(text))

  def _encode(self, texts: Sequence[str]):
    # an empty text still gets [CLS] [SEP]: the tokenizer refuses an empty word list
    words = [self.words(t) or [""] for t in texts]
    return self.tokenizer(
      words, is_split_into_words=True, truncation=True, max_length=self.max_length
    )

  def encode(self, text: str) -> list[int]:
    """Piece ids of one text, special pieces included, unpadded."""
    return list(self._encode([text])["input_ids"][0])

  def encode_batch(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(ids (N, max_length) padded with pad_id, word_ids (N, max_length) with NO_WORD at special
    and padding pieces)."""
    ids = np.full((len(texts), self.max_length), self.pad_id, np.int32)
    word_ids = np.full((len(texts), self.max_length), NO_WORD, np.int32)
    for start in range(0, len(texts), 1024):
      encoding = self._encode(texts[start : start + 1024])
      for row, pieces in enumerate(encoding["input_ids"]):
        ids[start + row, : len(pieces)] = pieces
        word_ids[start + row, : len(pieces)] = [
          NO_WORD if w is None else w for w in encoding.word_ids(row)
        ]
    return ids, word_ids

  def inputs(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
    return dict(zip(("ids", "word_ids"), self.encode_batch(texts)))

  @staticmethod
  def word_ids(inputs: dict[str, np.ndarray]) -> np.ndarray:
    return inputs["word_ids"]
