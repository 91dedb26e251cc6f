"""A trained model as a workdir holds it: config.json, Orbax checkpoints, and the text encoding
(vocab.json for LSTM/CNN; architecture.json and tokenizer/ for BERT/DeBERTa)."""
from __future__ import annotations

import dataclasses
import json
import pathlib

import jax
import ml_collections
import numpy as np

from flat_jax.config import TRANSFORMERS
from flat_jax.data.pieces import PieceEncoder
from flat_jax.data.vocab import Vocab
from flat_jax.models import transformer
from flat_jax.models.classifier import build_word_classifier
from flat_jax.training.checkpoints import load_params


@dataclasses.dataclass
class TrainedModel:
  model: object                   # WordClassifier, BertClassifier or DebertaClassifier
  params: dict
  vocab: Vocab | None             # word models
  config: ml_collections.ConfigDict
  num_classes: int
  pieces: PieceEncoder | None = None   # word-piece models

  def apply(self, ids, **kwargs):
    return self.model.apply({"params": self.params}, ids, **kwargs)


def final_stage(workdir) -> str:
  """The training stage whose best checkpoint is the run's model (the last one trained)."""
  workdir = pathlib.Path(workdir)
  results = workdir / "results.json"
  if results.exists() and (stage := json.loads(results.read_text()).get("model_stage")):
    return stage
  stages = sorted((workdir / "checkpoints").glob("*/best"), key=lambda p: p.stat().st_mtime)
  if not stages:
    raise FileNotFoundError(f"{workdir}: no trained model (no checkpoints/<stage>/best)")
  return stages[-1].parent.name


def load_trained(workdir, stage: str | None = None) -> TrainedModel:
  """Rebuilds the model of a workdir from its config, vocabulary and best checkpoint; the shapes
  (embedding size, classes, word mask) come from the checkpoint itself."""
  workdir = pathlib.Path(workdir)
  config = ml_collections.ConfigDict(json.loads((workdir / "config.json").read_text()))
  params = load_params(workdir / "checkpoints" / (stage or final_stage(workdir)))
  params = jax.tree.map(np.asarray, params)
  if config.model.name in TRANSFORMERS:
    num_classes = params["classifier"]["bias"].shape[0]
    model = transformer.build(transformer.load_architecture(workdir), num_classes, config.model,
                              with_mask="word_mask" in params)
    pieces = PieceEncoder(transformer.load_saved_tokenizer(workdir), config.data.max_length)
    return TrainedModel(model, params, None, config, num_classes, pieces)
  vocab = Vocab.load(workdir / "vocab.json")
  vocab_size, embed_dim = params["embed"]["embedding"].shape
  if vocab_size > len(vocab):
    raise ValueError(f"{workdir}: checkpoint vocabulary {vocab_size} > vocab.json {len(vocab)}")
  vocab = vocab.prefix(vocab_size)   # vocab.json only grows (adversarial rounds append words)
  num_classes = params["head"]["bias"].shape[0]
  model = build_word_classifier(config.model, vocab_size, num_classes, embed_dim,
                                with_mask="word_mask" in params)
  return TrainedModel(model, params, vocab, config, num_classes)
