"""The explicit train state and the optimiser built from the config."""

from __future__ import annotations

from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax
from flax import struct


class TrainState(struct.PyTreeNode):
  step: jax.Array
  params: Any
  opt_state: Any
  rng: jax.Array  # raw uint32[2] key; per-example keys are folded from it
  apply_fn: Callable = struct.field(pytree_node=False)
  tx: optax.GradientTransformation = struct.field(pytree_node=False)

  @classmethod
  def create(cls, *, apply_fn, params, tx, seed: int) -> "TrainState":
    return cls(
      step=jnp.zeros((), jnp.int32),
      params=params,
      opt_state=tx.init(params),
      rng=jax.random.PRNGKey(seed),
      apply_fn=apply_fn,
      tx=tx,
    )

  def apply_gradients(self, grads) -> "TrainState":
    updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
    return self.replace(
      step=self.step + 1, params=optax.apply_updates(self.params, updates), opt_state=opt_state
    )


def _parameter_labels(params, freeze_embeddings: bool):
  flat = flax.traverse_util.flatten_dict(params)
  labels = {
    path: "frozen" if freeze_embeddings and path[0] == "embed" else "trainable" for path in flat
  }
  return flax.traverse_util.unflatten_dict(labels)


def make_optimizer(
  train_config, params, *, freeze_embeddings: bool, total_steps: int | None = None
) -> optax.GradientTransformation:
  """Adam/AdamW/SGD at the configured rate (linear decay to 0 over `total_steps` when given),
  optional global-norm clipping, and no update at all for frozen embeddings."""
  lr = train_config.learning_rate
  if total_steps:
    lr = optax.linear_schedule(lr, 0.0, total_steps)
  if train_config.optimizer == "adam":
    base = optax.adam(lr)
  elif train_config.optimizer == "adamw":
    base = optax.adamw(lr, eps=1e-8, weight_decay=train_config.weight_decay)
  else:
    base = optax.sgd(lr)
  if train_config.grad_clip:
    base = optax.chain(optax.clip_by_global_norm(train_config.grad_clip), base)
  return optax.multi_transform(
    {"trainable": base, "frozen": optax.set_to_zero()}, _parameter_labels(params, freeze_embeddings)
  )
