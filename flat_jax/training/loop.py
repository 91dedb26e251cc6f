"""Epoch loop: train, evaluate on dev each epoch, keep the best-dev parameters."""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from typing import Callable

import jax
import numpy as np
from tqdm.auto import tqdm

from flat_jax.data.batching import batches, num_batches
from flat_jax.training.step import shard_batch


@dataclasses.dataclass
class EncodedSplit:
  ids: np.ndarray
  labels: np.ndarray

  def __len__(self) -> int:
    return len(self.labels)


class MetricsWriter:
  """Appends one JSON object per line to DIR/metrics.jsonl (None: log only)."""

  def __init__(self, path):
    self.path = path

  def write(self, record: dict) -> None:
    logging.info("%s", " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in record.items()))
    if self.path:
      with open(self.path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def predict_logits(eval_step, params, split: EncodedSplit, batch_size: int, mesh) -> np.ndarray:
  out = []
  for batch in batches(split.ids, split.labels, batch_size):
    real = int(batch["weight"].sum())
    logits = eval_step(params, shard_batch(batch, mesh))
    out.append(np.asarray(jax.device_get(logits))[:real])
  return np.concatenate(out)


def accuracy(eval_step, params, split: EncodedSplit, batch_size: int, mesh) -> float:
  """Accuracy in percent, as the paper reports it."""
  logits = predict_logits(eval_step, params, split, batch_size, mesh)
  return float(100.0 * np.mean(np.argmax(logits, -1) == split.labels))


@dataclasses.dataclass
class FitResult:
  state: object
  best_params: object
  best_dev_accuracy: float
  best_epoch: int
  seconds: float


def fit(state, train: EncodedSplit, dev: EncodedSplit, *, train_step: Callable, eval_step: Callable,
        mesh, epochs: int, batch_size: int, eval_batch_size: int, seed: int,
        metrics: MetricsWriter, stage: str = "train", steps_limit: int = 0) -> FitResult:
  best_params, best_dev, best_epoch = None, -1.0, -1
  start = time.perf_counter()
  steps_per_epoch = num_batches(len(train), batch_size)
  if steps_limit:
    steps_per_epoch = min(steps_per_epoch, steps_limit)
  for epoch in range(epochs):
    epoch_start = time.perf_counter()
    step_metrics = []   # device arrays; fetched once per epoch so steps are not synchronised
    bar = tqdm(batches(train.ids, train.labels, batch_size, shuffle_seed=seed * 1000 + epoch),
               total=steps_per_epoch, desc=f"{stage} epoch {epoch + 1}/{epochs}", leave=False,
               mininterval=2.0, disable=None)
    for i, batch in enumerate(bar):
      if i >= steps_per_epoch:
        break
      state, m = train_step(state, shard_batch(batch, mesh))
      step_metrics.append(m)
      if i % 20 == 0:
        m = jax.device_get(m)
        bar.set_postfix(loss=f"{m['loss'] / max(m['weight'], 1.0):.3f}")
    bar.close()
    step_metrics = jax.device_get(step_metrics)
    totals = {k: float(sum(m[k] for m in step_metrics)) for k in ("loss", "correct", "weight")}
    train_seconds = time.perf_counter() - epoch_start
    dev_acc = accuracy(eval_step, state.params, dev, eval_batch_size, mesh)
    if dev_acc > best_dev:
      best_dev, best_epoch = dev_acc, epoch + 1
      best_params = jax.device_get(state.params)
    metrics.write({"stage": stage, "epoch": epoch + 1, "step": int(jax.device_get(state.step)),
                   "train_loss": totals["loss"] / totals["weight"],
                   "train_accuracy": 100.0 * totals["correct"] / totals["weight"],
                   "dev_accuracy": dev_acc, "best_dev_accuracy": best_dev,
                   "examples_per_s": totals["weight"] / train_seconds,
                   "epoch_seconds": time.perf_counter() - epoch_start})
  return FitResult(state, best_params, best_dev, best_epoch, time.perf_counter() - start)
