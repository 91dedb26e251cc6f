"""Epoch loop: train, evaluate on dev each epoch, keep the best-dev parameters."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import time
from typing import Callable

import jax
import numpy as np
from tqdm.auto import tqdm

from flat_jax import distributed
from flat_jax.data.batching import PaddingTrim, batches, num_batches, split_twins
from flat_jax.data.encoding import EncodedSplit
from flat_jax.training.checkpoints import StageCheckpoints


class TrainingError(RuntimeError):
  """Training cannot go on (a non-finite loss); the message names the stage, epoch and step."""


def _check_finite(step_metrics: list[dict], stage: str, epoch: int, first_step: int) -> None:
  """Stops at an epoch whose loss went non-finite, naming the first such step, before the epoch is
  saved: the last checkpoint stays the last good epoch."""
  for i, m in enumerate(step_metrics):
    if not np.isfinite(m["loss"]):
      raise TrainingError(
        f"{stage}: the training loss is {float(m['loss'])} at epoch {epoch}, step {first_step + i + 1} "
        f"(learning rate too high, or bad inputs?); stopped before saving this epoch: the "
        f"checkpoint of epoch {epoch - 1} is the last one"
      )


class MetricsWriter:
  """Appends one JSON object per line to DIR/metrics.jsonl (None: log only). With `tensorboard`,
  also writes each line's numbers as TensorBoard scalars under DIR/tensorboard/, at one global step
  that runs on across stages: a stage starts where the stages before it in metrics.jsonl ended, so
  a resumed run continues the same curves."""

  def __init__(self, path, tensorboard: bool = False):
    self.path = path
    self._tensorboard = bool(tensorboard and path)
    self._writer = None

  def drop_after(self, stage: str, epoch: int) -> None:
    """Forgets lines of `stage` past `epoch` (written before a kill, redone after resuming), and a
    line cut short by a kill or a full disk (with a warning); rewrites the file atomically."""
    if not self.path or not self.path.exists():
      return
    keep = []
    for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
      try:
        record = json.loads(line)
      except json.JSONDecodeError:
        logging.warning(
          "%s:%d: a damaged line (cut short?) dropped: %r", self.path, number, line[:80]
        )
        continue
      if not (record.get("stage") == stage and record.get("epoch", 0) > epoch):
        keep.append(line)
    tmp = self.path.with_name(self.path.name + ".tmp")
    tmp.write_text("".join(l + "\n" for l in keep), encoding="utf-8")
    os.replace(tmp, self.path)

  def write(self, record: dict) -> None:
    logging.info(
      "%s",
      " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()),
    )
    if not self.path:
      return
    if self._tensorboard:  # before the line joins the file: its stage's offset ignores it
      self._scalars(record)
    try:
      with open(self.path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    except OSError as e:  # named: a buffered write's ENOSPC comes at close, without a filename
      if e.filename is None:
        raise OSError(e.errno, e.strerror, str(self.path)) from e
      raise

  def global_step(self, stage: str, step: int) -> int:
    """`step` of `stage` on the run's one axis: plus the last step of every other stage that
    metrics.jsonl holds before this stage's first line."""
    offset, last = 0, {}
    if self.path.exists():
      for line in self.path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
          r = json.loads(line)
          if r.get("stage") == stage:
            break
          last[r.get("stage")] = int(r.get("step", 0))
      offset = sum(last.values())
    return offset + int(step)

  def _scalars(self, record: dict) -> None:
    if self._writer is None:
      from tensorboardX import SummaryWriter  # only when asked for

      # its own file per writer: two in the same second would otherwise share (and clobber) one
      self._writer = SummaryWriter(
        str(self.path.parent / "tensorboard"),
        flush_secs=10,
        filename_suffix=f".{os.getpid()}.{time.time_ns()}",
      )
    step = self.global_step(record.get("stage", ""), record.get("step", 0))
    for key, value in record.items():
      if isinstance(value, (int, float)) and key not in ("step", "epoch") and math.isfinite(value):
        self._writer.add_scalar(key, value, step)
    self._writer.add_text("stage", f"{record.get('stage')} epoch {record.get('epoch')}", step)
    self._writer.flush()


def predict_logits(
  eval_step, params, split: EncodedSplit, batch_size: int, mesh, trim: PaddingTrim | None = None
) -> np.ndarray:
  """Logits of every row in order. With `trim` (a batch -> batch cut of padding), rows go through
  in order of length so that short texts share short batches."""
  ids, labels, order = split.ids, split.labels, None
  if trim is not None:
    order = np.argsort(trim.lengths(ids), kind="stable")
    ids, labels = ids[order], labels[order]
  params = distributed.replicate(params, mesh)
  out = []
  for batch in batches(ids, labels, batch_size):
    real = int(batch["weight"].sum())
    if trim is not None:
      batch = trim(batch)
    logits = eval_step(params, distributed.shard_batch(batch, mesh))
    out.append(distributed.to_host(logits)[:real])
  logits = np.concatenate(out)
  if order is not None:
    logits[order] = logits.copy()
  return logits


def accuracy(
  eval_step, params, split: EncodedSplit, batch_size: int, mesh, trim: PaddingTrim | None = None
) -> float:
  """Accuracy in percent, as the paper reports it."""
  logits = predict_logits(eval_step, params, split, batch_size, mesh, trim)
  return float(100.0 * np.mean(np.argmax(logits, -1) == split.labels))


def place_batch(batch, mesh, trim: PaddingTrim | None, pack_twins: bool):
  """A host training batch (or its twin / twin-less parts) trimmed and sharded over the mesh. The
  whole batch is trimmed before the split, so both parts share its length bucket: the compiled
  shapes are (bucket x pairs size), not (pairs size x pairs bucket x singles bucket)."""
  if trim is not None:
    batch = trim(batch)
  if pack_twins:
    # the pairs part in multiples of a quarter of the batch: a few compiled shapes, little padding
    parts = split_twins(batch, math.lcm(mesh.size, max(1, len(batch["weight"]) // 4)))
    if "whole" not in parts:
      return {name: distributed.shard_batch(part, mesh) for name, part in parts.items()}
  return distributed.shard_batch(batch, mesh)


@dataclasses.dataclass
class FitResult:
  state: object
  best_params: object
  best_dev_accuracy: float
  best_epoch: int
  seconds: float


def fit(
  state,
  train: EncodedSplit,
  dev: EncodedSplit,
  *,
  train_step: Callable,
  eval_step: Callable,
  mesh,
  epochs: int,
  batch_size: int,
  eval_batch_size: int,
  seed: int,
  metrics: MetricsWriter,
  stage: str = "train",
  steps_limit: int = 0,
  checkpoints: StageCheckpoints | None = None,
  trim: PaddingTrim | None = None,
  pack_twins: bool = False,
  select_epoch: str = "best_dev",
) -> FitResult:
  """Trains for `epochs`, evaluating on dev after each; with `checkpoints`, saves every epoch and
  resumes after the last saved one (the batch order and randomness of an epoch depend only on the
  seed, the epoch and the step, so a resumed run repeats the uninterrupted one). `trim` cuts each
  batch's padding (word-piece models). `pack_twins` forwards the rows without an adversarial twin
  once instead of beside a padding twin (batching.split_twins): the same loss, fewer texts.
  `select_epoch`: "best_dev" keeps the epoch of the highest dev accuracy as the stage's model,
  "last" the last epoch (FitResult.best_* then describe that epoch)."""
  if select_epoch not in ("best_dev", "last"):
    raise ValueError(f"select_epoch must be 'best_dev' or 'last', not {select_epoch!r}")
  best_params, best_dev, best_epoch, start_epoch, seconds = None, -1.0, -1, 0, 0.0
  state = distributed.replicate(state, mesh)  # restored (and saved) as arrays over the whole mesh
  if checkpoints is not None and (restored := checkpoints.restore_latest(state)) is not None:
    fresh_state = state
    state, meta = restored
    start_epoch, best_dev, best_epoch = meta["epoch"], meta["best_dev_accuracy"], meta["best_epoch"]
    seconds = meta["seconds"]
    best = checkpoints.restore_best(state.params)
    if best is None:  # every best checkpoint damaged: the stage is trained again
      logging.warning("%s: no readable best checkpoint; training this stage again", stage)
      checkpoints.clear_latest()
      state, start_epoch, best_dev, best_epoch, seconds = fresh_state, 0, -1.0, -1, 0.0
      best_params = None
    else:
      best_params, best_meta = best
      if best_meta["best_epoch"] != best_epoch:  # the newest best was damaged: the one before
        logging.warning(
          "%s: best epoch %d lost; epoch %d (dev %.2f) is the best again",
          stage,
          best_epoch,
          best_meta["best_epoch"],
          best_meta["best_dev_accuracy"],
        )
        best_dev, best_epoch = best_meta["best_dev_accuracy"], best_meta["best_epoch"]
    del fresh_state  # no second copy of the state through training
    logging.info(
      "%s: resuming after epoch %d of %d (best dev %.2f at epoch %d)",
      stage,
      start_epoch,
      epochs,
      best_dev,
      best_epoch,
    )
  metrics.drop_after(stage, start_epoch)
  steps_per_epoch = num_batches(len(train), batch_size)
  if steps_limit:
    steps_per_epoch = min(steps_per_epoch, steps_limit)
  for epoch in range(start_epoch, epochs):
    epoch_start = time.perf_counter()
    step_metrics = []  # device arrays; fetched once per epoch so steps are not synchronised
    bar = tqdm(
      batches(
        train.ids, train.labels, batch_size, shuffle_seed=seed * 1000 + epoch, extra=train.extra
      ),
      total=steps_per_epoch,
      desc=f"{stage} epoch {epoch + 1}/{epochs}",
      leave=False,
      mininterval=2.0,
      disable=None if distributed.is_primary() else True,
    )
    for i, batch in enumerate(bar):
      if i >= steps_per_epoch:
        break
      state, m = train_step(
        state, place_batch(batch, mesh, trim, pack_twins and "has_adv" in batch)
      )
      step_metrics.append(m)
      if i % 20 == 0:
        m = jax.device_get(m)
        bar.set_postfix(loss=f"{m['loss'] / max(m['weight'], 1.0):.3f}")
    bar.close()
    step_metrics = jax.device_get(step_metrics)
    _check_finite(step_metrics, stage, epoch + 1, epoch * steps_per_epoch)
    totals = {k: float(sum(m[k] for m in step_metrics)) for k in step_metrics[0]}
    train_seconds = time.perf_counter() - epoch_start
    dev_acc = accuracy(eval_step, state.params, dev, eval_batch_size, mesh, trim)
    is_best = dev_acc > best_dev or select_epoch == "last"
    if is_best:
      best_dev, best_epoch = dev_acc, epoch + 1
      best_params = jax.device_get(state.params)
    seconds += time.perf_counter() - epoch_start
    metrics.write(
      {
        "stage": stage,
        "epoch": epoch + 1,
        "step": int(jax.device_get(state.step)),
        **{
          f"train_{k}": v / totals["weight"]
          for k, v in totals.items()
          if k not in ("weight", "correct")
        },
        "train_accuracy": 100.0 * totals["correct"] / totals["weight"],
        "dev_accuracy": dev_acc,
        "best_dev_accuracy": best_dev,
        "examples_per_s": totals["weight"] / train_seconds,
        "epoch_seconds": time.perf_counter() - epoch_start,
      }
    )
    if checkpoints is not None:
      checkpoints.save(
        epoch + 1,
        state,
        {
          "epoch": epoch + 1,
          "best_dev_accuracy": best_dev,
          "best_epoch": best_epoch,
          "seconds": seconds,
        },
        is_best=is_best,
      )
  if checkpoints is not None:
    checkpoints.close()  # Orbax's managers hold threads and handles until closed
  return FitResult(state, best_params, best_dev, best_epoch, seconds)
