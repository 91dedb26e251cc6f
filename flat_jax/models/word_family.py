"""LSTM and CNN: one id per word from the run's vocabulary, pretrained word vectors in the table.

The vocabulary is built from the training texts; an adversarial round may grow it with the
substitutes that have a pretrained vector (their rows join the table; existing ids and rows never
change). A workdir keeps vocab.json (only ever grown) to read texts as its model did.
"""

from __future__ import annotations

import pathlib

import jax
import numpy as np

from flat_jax.data.embeddings import load_embeddings, pretrained_vectors
from flat_jax.data.encoding import WordEncoder
from flat_jax.data.vocab import Vocab
from flat_jax.models.classifier import build_word_classifier, with_embedding
from flat_jax.models.params import merge_params

VOCAB_FILE = "vocab.json"
FIRST_WORD_ID = 2  # after <pad> and <unk>


class Family:
  word_gradients = True  # a substitute is one id: HotFlip's first-order estimate is defined

  def __init__(
    self, text: WordEncoder, matrix: np.ndarray, embeddings_source: str, coverage: float
  ):
    self.text = text
    self.matrix = matrix  # the pretrained rows of every vocabulary word, grown with it
    self.embeddings_source = embeddings_source
    self.coverage = coverage

  @classmethod
  def for_run(cls, config, dataset) -> "Family":
    vocab = Vocab.build(dataset.train.texts, min_freq=config.data.min_freq)
    embeddings = load_embeddings(
      vocab,
      config.model.embeddings,
      config.model.embeddings_format,
      seed=config.seed,
      norm=config.model.embeddings_norm,
    )
    return cls(
      WordEncoder(vocab, config.data.max_length),
      embeddings.matrix,
      embeddings.source,
      embeddings.coverage,
    )

  def describe(self) -> dict:
    return {
      "embeddings": {
        "source": self.embeddings_source,
        "dim": int(self.matrix.shape[1]),
        "coverage": round(self.coverage, 4),
      }
    }

  def build(
    self,
    config,
    num_classes: int,
    with_mask: bool,
    init_params: dict | None,
    restore: dict | None,
    sample_ids,
  ):
    """(model, params, embedding-table size): the previous stage's best (`init_params`; its table
    rows keep their possibly fine-tuned values, rows of words added since come new), or the
    pretrained table with the arrays of `restore` (config.restore's parameters) that fit."""
    model = build_word_classifier(
      config.model, len(self.text.vocab), num_classes, self.matrix.shape[1], with_mask=with_mask
    )
    params = model.init(jax.random.PRNGKey(config.seed), sample_ids, deterministic=True)["params"]
    if init_params is not None:
      old_table = np.asarray(init_params["embed"]["embedding"])
      table = np.concatenate([old_table, self.matrix[len(old_table) :]])
      params = with_embedding(params, table)
      params = merge_params(
        params,
        {k: v for k, v in init_params.items() if k != "embed"},
        source="the previous stage's best model",
      )
    else:
      params = with_embedding(params, self.matrix)
      if restore is not None:
        params = merge_params(params, restore, source=config.restore)
    return model, params, self.matrix.size

  def grow(self, config, words) -> dict:
    """Adds the round's substitute `words` that have a pretrained vector (attack.grow_vocab);
    returns the round summary's vocabulary fields."""
    new = []
    if config.attack.grow_vocab:
      unseen = [w for w in words if w not in self.text.vocab.index]
      vectors = pretrained_vectors(
        unseen,
        config.model.embeddings,
        config.model.embeddings_format,
        config.model.embeddings_norm,
      )
      new = [w for w in unseen if w in vectors]
    if new:
      self.text = WordEncoder(self.text.vocab.extended(new), self.text.max_length)
      self.matrix = np.concatenate([self.matrix, np.stack([vectors[w] for w in new])])
    return {"vocab_added": len(new), "vocab_size": len(self.text.vocab)}

  def save(self, workdir) -> None:
    self.text.vocab.save(pathlib.Path(workdir) / VOCAB_FILE)

  @staticmethod
  def load(workdir, config, params):
    """(model, text, num_classes) of a saved run; shapes come from the checkpoint's params."""
    vocab = Vocab.load(pathlib.Path(workdir) / VOCAB_FILE)
    vocab_size, embed_dim = params["embed"]["embedding"].shape
    if vocab_size > len(vocab):
      raise ValueError(f"{workdir}: checkpoint vocabulary {vocab_size} > {VOCAB_FILE} {len(vocab)}")
    vocab = vocab.prefix(vocab_size)  # vocab.json only grows (adversarial rounds append words)
    num_classes = params["head"]["bias"].shape[0]
    model = build_word_classifier(
      config.model, vocab_size, num_classes, embed_dim, with_mask="word_mask" in params
    )
    return model, WordEncoder(vocab, config.data.max_length), num_classes

  def vocabulary_phi(self, model, params) -> np.ndarray:
    """phi of every vocabulary word the model's table holds (from <unk>'s successor on): under the
    continuous schedule an earlier round's model may be chosen, before later substitutes joined."""
    rows = min(len(self.text.vocab), int(params["embed"]["embedding"].shape[0]))
    return np.asarray(
      jax.device_get(
        model.apply({"params": params}, np.arange(FIRST_WORD_ID, rows)[None], method=model.phi)
      )
    )[0]
