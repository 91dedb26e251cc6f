"""A run's data, encoded as its model reads it: the dataset, the model family's text encoder and
starting material (flat_jax.models.registry), and train, dev and test as EncodedSplits.

Word models encode with the current vocabulary, which grows with the embedding table when a round's
substitutes join them: all three splits are encoded again then, so that dev selection and the test
accuracy read texts as the saved model, the attacks and IG do.
"""

from __future__ import annotations

import logging
from typing import Sequence

from flat_jax import distributed
from flat_jax.data.datasets import load_dataset
from flat_jax.data.encoding import EncodedSplit
from flat_jax.models import registry


def encode_split(text, texts: Sequence[str], labels) -> EncodedSplit:
  inputs = text.inputs(texts)
  covered = text.word_ids(inputs).max(axis=1) + 1
  cut = sum(int(n) < len(text.words(t)) for n, t in zip(covered, texts))
  if cut:
    logging.info(
      "%d of %d texts lose words beyond data.max_length=%d", cut, len(texts), text.max_length
    )
  ids = inputs.pop("ids")
  return EncodedSplit(ids, labels, inputs)


class RunData:
  def __init__(self, config):
    self.dataset = load_dataset(config.data, seed=config.seed)
    self.family = registry.family(config.model.name).for_run(config, self.dataset)
    self._encode()

  @property
  def text(self):
    return self.family.text

  def _encode(self) -> None:
    self.train, self.dev, self.test = (
      encode_split(self.text, split.texts, split.labels)
      for split in (self.dataset.train, self.dataset.dev, self.dataset.test)
    )

  def grow(self, config, words) -> dict:
    """The model family takes a round's substitute words (a word vocabulary grows); returns the
    round summary's fields."""
    summary = self.family.grow(config, words)
    if summary.get("vocab_added"):
      self._encode()
    return summary

  def save(self, workdir) -> None:
    """What load_trained needs besides the checkpoint to read texts as the model did."""
    if distributed.is_primary():
      self.family.save(workdir)
    distributed.barrier("encoding saved")
