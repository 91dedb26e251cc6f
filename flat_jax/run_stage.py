"""One training stage of a run: the mode's objective over a training set, from the previous
stage's model (or a fresh one), keeping the best-dev checkpoint in checkpoints/<stage>/."""

from __future__ import annotations

import dataclasses
import logging

import jax
import numpy as np

from flat_jax import config as config_lib
from flat_jax import distributed
from flat_jax.data.batching import num_batches
from flat_jax.data.encoding import EncodedSplit
from flat_jax.run_data import RunData
from flat_jax.training import objectives
from flat_jax.training.checkpoints import StageCheckpoints, load_params
from flat_jax.training.embedding_adversary import EmbeddingAdversary
from flat_jax.training.loop import MetricsWriter, fit
from flat_jax.training.state import TrainState, make_optimizer
from flat_jax.training.step import make_eval_step, make_train_step, model_apply_fn


@dataclasses.dataclass
class StageResult:
  model: object
  params: dict  # the best dev epoch's
  eval_step: object
  dev_accuracy: float
  best_epoch: int
  seconds: float
  final_state: object = None  # the last epoch's train state (host arrays)


def carry_optimizer(state, previous) -> object:
  """`state` with the optimiser moments, step and random key of `previous` (the authors' schedule
  continues one run); a fresh optimiser when the parameters changed shape (a grown trainable
  embedding table), with a warning."""
  same = jax.tree.structure(state.opt_state) == jax.tree.structure(previous.opt_state) and all(
    np.shape(a) == np.shape(b)
    for a, b in zip(jax.tree.leaves(state.opt_state), jax.tree.leaves(previous.opt_state))
  )
  if not same:
    logging.warning(
      "the optimiser state of the previous stage does not fit this one (parameter "
      "shapes changed); its moments start afresh"
    )
    return state
  return state.replace(opt_state=previous.opt_state, step=previous.step, rng=previous.rng)


def train_stage(
  config,
  workdir,
  data: RunData,
  mesh,
  *,
  stage: str,
  mode: str,
  train: EncodedSplit,
  epochs: int,
  init_params: dict | None,
  init_state=None,
) -> StageResult:
  """Trains one stage from `init_params` (the previous stage's best, or its last epoch's under the
  continuous schedule; None = fresh, or config.restore) with the objective of `mode`, keeping the
  best-dev checkpoint in checkpoints/<stage>/. `init_state`: continue that state's optimiser."""
  with_mask = mode == "flat"
  restore = load_params(config.restore) if config.restore and init_params is None else None
  model, params, table_size = data.family.build(
    config, data.dataset.num_classes, with_mask, init_params, restore, train.ids[:1]
  )
  apply_fn = model_apply_fn(model)
  adversary = None
  if mode in config_lib.EMBEDDING_MODES:
    adversary = EmbeddingAdversary.from_config(mode, config.embedding_adversary)
  num_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
  logging.info(
    "%s: model %s%s, %d parameters (%d in the embedding table), %d training rows%s",
    stage,
    config.model.name,
    " with word mask" if with_mask else "",
    num_params,
    table_size,
    len(train),
    f", {adversary}" if adversary else "",
  )

  train_config = config.train.copy_and_resolve_references()
  if mode == "flat" and config.flat.learning_rate:
    train_config.learning_rate = config.flat.learning_rate
  total_steps = None
  if config.train.schedule == "linear":  # over the real number of steps of this stage's set
    total_steps = epochs * num_batches(len(train), config.train.batch_size)
    if config.train.steps_limit:
      total_steps = epochs * min(
        config.train.steps_limit, num_batches(len(train), config.train.batch_size)
      )
  tx = make_optimizer(
    train_config, params, freeze_embeddings=config.model.freeze_embeddings, total_steps=total_steps
  )
  state = TrainState.create(apply_fn=apply_fn, params=params, tx=tx, seed=config.seed)
  if init_state is not None:
    state = carry_optimizer(state, init_state)
  objective = objectives.make_objective(
    mode,
    config.flat.beta,
    config.flat.gamma,
    config.flat.entropy_reduction,
    loss_on_probs=config.train.loss_on_probs,
    importance_positions=config.flat.importance_positions,
  )
  eval_step = make_eval_step(apply_fn, mesh)
  train_step = make_train_step(
    apply_fn,
    objective,
    mesh,
    grad_reduction=config.train.grad_reduction,
    donate_state=config.train.donate_state,
    adversary=adversary,
    embed_fn=lambda p, ids: model.apply({"params": p}, ids, method=model.embed_tokens),
  )
  fitted = fit(
    state,
    train,
    data.dev,
    train_step=train_step,
    eval_step=eval_step,
    mesh=mesh,
    epochs=epochs,
    batch_size=config.train.batch_size,
    eval_batch_size=config.train.eval_batch_size,
    seed=config.seed,
    metrics=MetricsWriter(
      workdir / "metrics.jsonl" if distributed.is_primary() else None,
      tensorboard=config.tensorboard,
    ),
    stage=stage,
    steps_limit=config.train.steps_limit,
    checkpoints=StageCheckpoints(workdir / "checkpoints" / stage),
    trim=data.text.trim,
    pack_twins=config.train.pack_twins,
    select_epoch=config.train.select_epoch,
  )
  return StageResult(
    model,
    jax.device_get(fitted.best_params),
    eval_step,
    fitted.best_dev_accuracy,
    fitted.best_epoch,
    fitted.seconds,
    jax.device_get(fitted.state),
  )
