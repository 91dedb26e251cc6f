"""flat_jax from Python: train a run, load its model, predict, explain with IG, attack.

    import flat_jax
    results = flat_jax.train("trec_cnn", "runs/trec", **{"train.epochs": 2})
    model = flat_jax.load("runs/trec")
    model.predict(["what is the capital of peru ?"])
    model.explain("what is the capital of peru ?")
    model.attack(["what is the capital of peru ?"], [model.label_names.index("LOC")])

Everything here goes through the same code as the command line (pipeline.run, the workdir's
checkpoints, the attack bridge, IG): a run trained from Python and one trained with flat-jax are the
same run.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import tempfile
from typing import Sequence

import ml_collections
import numpy as np

from flat_jax import config as config_lib
from flat_jax import pipeline
from flat_jax.attacks.bridge import PredictionBridge
from flat_jax.attacks.generate import AttackJob, attack_examples
from flat_jax.data.datasets import known_label_names
from flat_jax.interpret.pairs import word_attributor_ig
from flat_jax.training.artifacts import final_stage, load_trained


def get_config(
  name_or_path: str | ml_collections.ConfigDict, **overrides
) -> ml_collections.ConfigDict:
  """A shipped preset ("sst2_cnn", "default") or a config file, with dotted overrides:
  get_config("trec_cnn", **{"train.epochs": 2, "mode": "flat"}). Validated; ConfigError names a bad key."""
  if isinstance(name_or_path, ml_collections.ConfigDict):
    c = ml_collections.ConfigDict(name_or_path.to_dict())
  else:
    path = config_lib.config_file(str(name_or_path)).split(":", 1)[0]
    spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config()
  schema = {key for key, _ in config_lib._flatten(config_lib.base_config())}
  for key, value in overrides.items():
    if key not in schema:
      raise config_lib.ConfigError(f"unknown config key '{key}'")
    *parents, leaf = key.split(".")
    node = c
    for part in parents:
      node = node[part]
    node[leaf] = tuple(value) if isinstance(value, list) else value
  config_lib.validate(c)
  return c


def train(config_or_name, workdir, **overrides) -> dict:
  """Runs the whole procedure of the config (config.stage: all, train, ...) in `workdir`, resuming
  what is already there, exactly as `flat-jax --config ... --workdir ...`; returns results.json."""
  return pipeline.run(get_config(config_or_name, **overrides), pathlib.Path(workdir))


class Model:
  """A trained model of a workdir (its final stage unless `stage` is given)."""

  def __init__(self, workdir, stage: str | None = None):
    self.workdir = pathlib.Path(workdir)
    self.stage = stage or final_stage(self.workdir)
    self._trained = load_trained(self.workdir, self.stage)
    self.config = self._trained.config
    self.num_classes = self._trained.num_classes
    self.label_names = _label_names(self.config, self.num_classes)
    self._bridge = None
    self._ig = None

  def __repr__(self) -> str:
    return (
      f"Model({self.config.data.name} {self.config.model.name}-{self.config.mode}, stage "
      f"{self.stage}, classes {', '.join(self.label_names)})"
    )

  def probabilities(self, texts: Sequence[str]) -> np.ndarray:
    """(N, classes) softmax probabilities, the model in inference mode."""
    if self._bridge is None:
      self._bridge = PredictionBridge.from_trained(self._trained)
    return np.asarray(self._bridge(_texts(texts)))

  def predict(self, texts: Sequence[str]) -> list[dict]:
    """Per text: {"label": id, "label_name": name, "probabilities": {name: p}}."""
    probs = self.probabilities(texts)
    return [
      {
        "label": int(p.argmax()),
        "label_name": self.label_names[int(p.argmax())],
        "probabilities": {name: float(v) for name, v in zip(self.label_names, p)},
      }
      for p in probs
    ]

  def words(self, text: str) -> list[str]:
    """The words the model sees: cleaned, and cut where data.max_length (words or pieces) ends."""
    text_encoder = self._trained.text
    seen = int(text_encoder.word_ids(text_encoder.inputs([text])).max()) + 1
    return text_encoder.words(text)[:seen]

  def explain(
    self, text: str, label: int | str | None = None, *, steps: int = 50
  ) -> list[tuple[str, float]]:
    """Integrated gradients of the class probability per word (the predicted class by default),
    as the evaluation computes them: [(word, attribution), ...] in text order."""
    if self._ig is None or self._ig[0] != steps:
      self._ig = (steps, word_attributor_ig(self._trained, steps=steps, batch_size=1))
    attribution = self._ig[1]([text])[0]  # (classes, words)
    if label is None:
      label = int(self.probabilities([text])[0].argmax())
    elif isinstance(label, str):
      label = self.label_names.index(label)
    words = self.words(text)
    return [(w, float(a)) for w, a in zip(words, attribution[label])]

  def attack(
    self,
    texts: Sequence[str],
    labels: Sequence[int | str],
    recipe: str = "textfooler",
    *,
    out=None,
    temperature: float | None = None,
    workers: int = 1,
  ) -> list[dict]:
    """Attacks each (text, label) with a TextAttack recipe and returns the records as the pipeline
    writes them (status, original, perturbed, queries, replaced words, ...). The model is queried at
    `temperature`; by default at the run's calibrated evaluation temperature when it was measured on
    this stage, else at 1. With `out` (a .jsonl path) records are kept there and reused."""
    texts = _texts(texts)
    ids = [self.label_names.index(l) if isinstance(l, str) else int(l) for l in labels]
    if len(ids) != len(texts):
      raise ValueError(f"{len(texts)} texts but {len(ids)} labels")
    if temperature is None:
      temperature = self._calibrated_temperature()
    a = self.config.attack
    job = AttackJob(
      model_dir=str(self.workdir),
      recipe=recipe,
      stage=self.stage,
      seed=self.config.seed,
      synonym_vectors=a.synonym_vectors,
      masked_lm=a.masked_lm,
      hownet_candidates=a.hownet_candidates,
      query_budget=a.query_budget,
      synonym_min_cos=a.synonym_min_cos,
      temperature=float(temperature),
      budget=a.budget,
      search=a.search,
      lockstep_examples=a.lockstep_examples,
      sentence_encoder=a.sentence_encoder,
    )
    if out is not None:
      return attack_examples(job, texts, ids, out, workers=workers, desc=f"attack {recipe}")
    with tempfile.TemporaryDirectory() as tmp:
      return attack_examples(
        job,
        texts,
        ids,
        pathlib.Path(tmp) / "records.jsonl",
        workers=workers,
        desc=f"attack {recipe}",
      )

  def _calibrated_temperature(self) -> float:
    results = self.workdir / "results.json"
    measured = (
      json.loads(results.read_text()).get("attack_temperature") if results.exists() else None
    )
    if measured and measured.get("stage") == self.stage:
      return float(measured["value"])
    return 1.0


def load(workdir, stage: str | None = None) -> Model:
  """The trained model of a workdir (made by train() or flat-jax)."""
  return Model(workdir, stage)


def _texts(texts) -> list[str]:
  if isinstance(texts, str):
    raise TypeError("pass a list of texts, not one string")
  return [str(t) for t in texts]


def _label_names(c, num_classes: int) -> tuple[str, ...]:
  names = known_label_names(c.data)
  return names if len(names) == num_classes else tuple(str(i) for i in range(num_classes))
