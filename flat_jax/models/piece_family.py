"""BERT and DeBERTa: word pieces of the checkpoint's tokenizer, each piece knowing its word.

The first stage starts from the pretrained checkpoint (or random weights, model.from_scratch); the
tokenizer covers every word, so an adversarial round adds nothing. A workdir keeps architecture.json
and tokenizer/ to rebuild its model without the checkpoint.
"""

from __future__ import annotations

import logging
import pathlib

from flat_jax.data.pieces import PieceEncoder
from flat_jax.models import transformer
from flat_jax.models.checkpoints_hf import CheckpointError
from flat_jax.models.params import merge_params


class Family:
  word_gradients = False  # a substitute may be another number of pieces: no first-order flip

  def __init__(self, text: PieceEncoder, source: transformer.TransformerSource):
    self.text = text
    self.source = source

  @classmethod
  def for_run(cls, config, dataset) -> "Family":
    source = transformer.load_source(config.model)
    if config.data.max_length > source.arch.max_position:
      raise CheckpointError(
        f"data.max_length={config.data.max_length} pieces exceeds the model's "
        f"{source.arch.max_position} positions"
      )
    logging.info("model: %s", source.description)
    return cls(PieceEncoder(source.tokenizer, config.data.max_length), source)

  def describe(self) -> dict:
    return {"pretrained": self.source.description}

  def build(
    self,
    config,
    num_classes: int,
    with_mask: bool,
    init_params: dict | None,
    restore: dict | None,
    sample_ids,
  ):
    """(model, params, embedding-table size): the pretrained checkpoint (or random weights) with
    the previous stage's best (`init_params`) or `restore` over it; a word mask new in this stage
    starts fresh."""
    model = transformer.build(self.source.arch, num_classes, config.model, with_mask=with_mask)
    params = transformer.init_params(model, self.source, config.seed)
    if init_params is not None:
      params = merge_params(params, init_params, source="the previous stage's best model")
    elif restore is not None:
      params = merge_params(params, restore, source=config.restore)
    table = params["encoder"]["embeddings"]["word_embeddings"]["embedding"]
    return model, params, int(table.size)

  def grow(self, config, words) -> dict:
    return {}  # the tokenizer reads every word already

  def save(self, workdir) -> None:
    transformer.save_architecture(self.source.arch, workdir)
    transformer.save_tokenizer(self.source.tokenizer, workdir)

  @staticmethod
  def load(workdir, config, params):
    """(model, text, num_classes) of a saved run; shapes come from the checkpoint's params."""
    num_classes = params["classifier"]["bias"].shape[0]
    model = transformer.build(
      transformer.load_architecture(workdir),
      num_classes,
      config.model,
      with_mask="word_mask" in params,
    )
    text = PieceEncoder(
      transformer.load_saved_tokenizer(pathlib.Path(workdir)), config.data.max_length
    )
    return model, text, num_classes

  def vocabulary_phi(self, model, params):
    return (
      None  # a piece's phi depends on its position (the embedding-layer output): no per-word table
    )
