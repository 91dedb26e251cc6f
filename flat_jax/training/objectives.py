"""Loss terms. Each returns a sum over the (weighted) examples of the local shard; the step divides
by the global weight so that padding rows and uneven shards do not bias the mean."""
from __future__ import annotations

import jax.numpy as jnp
import optax


def cross_entropy_sum(logits, labels, weight):
  return jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits, labels) * weight)


def correct_sum(logits, labels, weight):
  return jnp.sum((jnp.argmax(logits, -1) == labels) * weight)


def base_objective(outputs, batch):
  """Plain cross-entropy (mode base). Returns (loss_sum, metric_sums)."""
  loss = cross_entropy_sum(outputs["logits"], batch["label"], batch["weight"])
  return loss, {"loss": loss, "correct": correct_sum(outputs["logits"], batch["label"], batch["weight"])}
