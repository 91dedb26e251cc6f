"""A trained model as a workdir holds it: config.json, Orbax checkpoints, and what its family
(flat_jax.models.registry) saved to read texts and rebuild the model."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import jax
import ml_collections
import numpy as np

from flat_jax.data.encoding import TextEncoder
from flat_jax.models import registry
from flat_jax.training.checkpoints import load_params


@dataclasses.dataclass
class TrainedModel:
  model: object  # WordClassifier, BertClassifier or DebertaClassifier
  params: dict
  text: TextEncoder  # texts -> the model's inputs, as it was trained
  config: ml_collections.ConfigDict
  num_classes: int

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
  """Rebuilds the model of a workdir from its config, text encoding (its family's files) and best
  checkpoint; the shapes (embedding size, classes, word mask) come from the checkpoint itself."""
  workdir = pathlib.Path(workdir)
  config = ml_collections.ConfigDict(json.loads((workdir / "config.json").read_text()))
  params = load_params(workdir / "checkpoints" / (stage or final_stage(workdir)))
  params = jax.tree.map(np.asarray, params)
  model, text, num_classes = registry.family(config.model.name).load(workdir, config, params)
  return TrainedModel(model, params, text, config, num_classes)
