"""Jit-compiled, data-parallel train and eval steps.

The pmap programming model written with `jax.shard_map` over a Mesh(devices, ('data',)): each
device takes its shard of the batch, computes gradients of its share of the global loss, and the
gradients are summed over the 'data' axis. Each local loss is already divided by the *global*
example weight, so the psum of gradients is the gradient of the global weighted mean (a pmean of
per-shard means would over-weight a shard holding padding rows).

Randomness (dropout, mask sampling) is keyed per text from (state.rng, step, example index, text
slot), so a run on N devices computes the same function as on one device, and a row's original text
draws the same noise whether or not its twin is forwarded beside it.

A batch is either one dict of rows, or a dict of such parts ({"pairs": ..., "singles": ...} from
flat_jax.data.batching.split_twins); the loss is the weighted sum over all parts' rows.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import Mesh, PartitionSpec as P

# the mesh and batch placement live in flat_jax.distributed (they span processes); re-exported here
# for the callers that build a step and its mesh together
from flat_jax.distributed import AXIS, make_mesh, shard_batch  # noqa: F401
from flat_jax.data.encoding import TEXT_COLUMNS
from flat_jax.training.embedding_adversary import EmbeddingAdversary, ascend, random_start


def model_apply_fn(model) -> Callable:
  """The apply_fn the steps take, for any classifier: texts are its input columns {"ids", ...}."""

  def apply_fn(params, texts, deterministic, rngs, perturbation=None):
    return model.apply(
      {"params": params}, **texts, deterministic=deterministic, rngs=rngs, perturbation=perturbation
    )

  return apply_fn


def example_keys(rng, step, index):
  step_key = jax.random.fold_in(rng, step)
  return jax.vmap(lambda i: jax.random.fold_in(step_key, i))(index)


def row_texts(row):
  """The texts of one training row: the original, and its adversarial twin when the batch has one,
  as the model's input columns {"ids", ...} (T, L)."""

  def stack(key):
    twin = "adv_" + key
    return jnp.stack([row[key], row[twin]]) if twin in row else row[key][None]

  return {key: stack(key) for key in TEXT_COLUMNS if key in row}


def make_train_step(
  apply_fn: Callable,
  objective: Callable,
  mesh: Mesh,
  rng_names=("dropout", "mask"),
  grad_reduction: str = "psum",
  donate_state: bool = False,
  adversary: EmbeddingAdversary | None = None,
  embed_fn: Callable | None = None,
):
  """apply_fn(params, texts, deterministic=..., rngs=..., perturbation=None) -> outputs dict, texts
  the input columns {"ids", ...} as row_texts gives, perturbation (added to the word embeddings) of their shape (.., L, D);
  objective(outputs, batch) -> (loss_sum, metric_sums), outputs with a text axis (B, T, ...).

  adversary: embedding-space adversarial training (modes pgd and freelb,
  flat_jax/training/embedding_adversary.py): K ascent steps on a perturbation of each text's word
  embeddings inside the step; embed_fn(params, ids) -> word embeddings gives its shape. Every text
  keeps one dropout (and mask) draw through the K passes, as FreeLB does (Zhu et al. 3.3: a new
  draw per pass makes the ascent chase the noise).

  grad_reduction "psum": one all-reduce; its summation order is the collective library's (XLA's
  in-process one differs from gloo's or NCCL's), so the same run split differently over processes
  differs in the last bits, and training amplifies that. "ordered": every device gathers all
  per-device gradients and sums them in mesh order: the same floating-point operations whatever the
  process layout, for N times the traffic.

  donate_state: the step may reuse the input state's buffers for the new state (no second copy of
  parameters and optimiser moments); the caller must not use a state after passing it in."""
  if grad_reduction not in ("psum", "ordered"):
    raise ValueError(f"grad_reduction must be 'psum' or 'ordered', not {grad_reduction!r}")

  if adversary is not None and embed_fn is None:
    raise ValueError("an embedding adversary needs embed_fn (its perturbation's shape)")

  def text_keys(batch, keys):
    """(B, T) keys: one per text of each row, from the row's key and the text's slot."""
    slots = jnp.arange(jax.tree.leaves(row_texts(jax.tree.map(lambda x: x[0], batch)))[0].shape[0])
    return jax.vmap(lambda key: jax.vmap(lambda t: jax.random.fold_in(key, t))(slots))(keys)

  def per_example_outputs(params, batch, keys, deltas=None):
    """Outputs with a text axis (B, T, ...); deltas (B, T, L, D) perturb the word embeddings."""

    def text_outputs(text, key, delta):
      rngs = {name: jax.random.fold_in(key, i) for i, name in enumerate(rng_names)}
      extra = {} if delta is None else {"perturbation": delta[None]}
      outputs = apply_fn(
        params, jax.tree.map(lambda x: x[None], text), deterministic=False, rngs=rngs, **extra
      )
      return jax.tree.map(lambda x: x[0], outputs)

    def one(row, row_keys, row_deltas):
      return jax.vmap(text_outputs, in_axes=(0, 0, None if row_deltas is None else 0))(
        row_texts(row), row_keys, row_deltas
      )

    return jax.vmap(one, in_axes=(0, 0, None if deltas is None else 0))(
      batch, text_keys(batch, keys), deltas
    )

  def parts_loss(params, parts, keys, total_weight, deltas=None):
    loss_sum, metrics = 0.0, None
    for name, part in parts.items():
      outputs = per_example_outputs(
        params, part, keys[name], None if deltas is None else deltas[name]
      )
      part_loss, part_metrics = objective(outputs, part)
      loss_sum += part_loss
      metrics = part_metrics if metrics is None else jax.tree.map(jnp.add, metrics, part_metrics)
    return loss_sum / total_weight, metrics

  def adversary_start(params, parts, keys):
    """Each text's perturbed positions (B, T, L) and delta_0 (B, T, L, D): the random start, or zero
    when there is no ascent (K = 0). The positions are the model's input_mask (every piece a
    transformer attends to, [CLS] and [SEP] included) or, for word models, its token_mask."""
    reals, deltas = {}, {}
    for name, part in parts.items():
      # only the masks of these outputs are used: XLA drops the rest of the forward pass
      outputs = per_example_outputs(params, part, keys[name])
      reals[name] = outputs.get("input_mask", outputs["token_mask"])
      shape = jax.eval_shape(embed_fn, params, jax.vmap(row_texts)(part)["ids"]).shape
      if adversary.steps and adversary.init_magnitude:
        # a stream of its own beside the model's rng streams, per text
        start_keys = jax.vmap(jax.vmap(lambda k: jax.random.fold_in(k, len(rng_names))))(
          text_keys(part, keys[name])
        )
        deltas[name] = jax.vmap(
          jax.vmap(lambda k, real: random_start(k, shape[2:], real, adversary.init_magnitude))
        )(start_keys, reals[name])
      else:
        deltas[name] = jnp.zeros(shape, jnp.float32)
    return reals, deltas

  def adversarial_grads(params, parts, keys, total_weight):
    reals, deltas = adversary_start(params, parts, keys)
    value_and_grads = jax.value_and_grad(
      lambda p, d: parts_loss(p, parts, keys, total_weight, d), argnums=(0, 1), has_aux=True
    )

    def step(deltas, delta_grads):
      return {
        name: ascend(
          deltas[name], delta_grads[name], reals[name], adversary.step_size, adversary.max_norm
        )
        for name in deltas
      }

    if adversary.kind == "freelb" and adversary.steps:
      grads = metrics = None
      for k in range(adversary.steps):
        (_, m), (g, delta_grads) = value_and_grads(params, deltas)
        grads = g if grads is None else jax.tree.map(jnp.add, grads, g)
        metrics = m if metrics is None else jax.tree.map(jnp.add, metrics, m)
        if k + 1 < adversary.steps:  # the last point's ascent would never be used
          deltas = step(deltas, jax.lax.stop_gradient(delta_grads))
      scale = 1.0 / adversary.steps
      return jax.tree.map(lambda g: g * scale, grads), jax.tree.map(lambda m: m * scale, metrics)
    for _ in range(adversary.steps if adversary.kind == "pgd" else 0):
      delta_grads = jax.grad(lambda d: parts_loss(params, parts, keys, total_weight, d)[0])(deltas)
      deltas = step(deltas, delta_grads)
    (_, metrics), (grads, _) = value_and_grads(params, jax.lax.stop_gradient(deltas))
    return grads, metrics

  def local_grads(params, parts, keys):
    total_weight = lax.psum(sum(jnp.sum(part["weight"]) for part in parts.values()), AXIS)
    if adversary is None:
      (_, metrics), grads = jax.value_and_grad(
        lambda p: parts_loss(p, parts, keys, total_weight), has_aux=True
      )(params)
    else:
      grads, metrics = adversarial_grads(params, parts, keys, total_weight)
    if grad_reduction == "ordered":
      grads = jax.tree.map(lambda g: jnp.sum(lax.all_gather(g, AXIS), axis=0), grads)
    else:
      grads = lax.psum(grads, AXIS)
    weight = sum(jnp.sum(part["weight"]) for part in parts.values())
    metrics = lax.psum({**metrics, "weight": weight}, AXIS)
    return grads, metrics

  # check_vma=False gives pmap semantics: gradients are per-device until the explicit psum. (With
  # vma checking, the gradient of a replicated parameter is implicitly summed already, and Flax's
  # scanned LSTM carry, initialised as a replicated zero, fails the scan type check.)
  sharded_grads = jax.shard_map(
    local_grads, mesh=mesh, in_specs=(P(), P(AXIS), P(AXIS)), out_specs=(P(), P()), check_vma=False
  )

  def train_step(state, batch):
    parts = {"whole": batch} if "ids" in batch else batch
    keys = {
      name: example_keys(state.rng, state.step, part["index"]) for name, part in parts.items()
    }
    grads, metrics = sharded_grads(state.params, parts, keys)
    return state.apply_gradients(grads), metrics

  return jax.jit(train_step, donate_argnums=(0,) if donate_state else ())


def make_eval_step(apply_fn: Callable, mesh: Mesh):
  """Returns per-example logits of a batch (inference mode), sharded like the batch."""

  def local_logits(params, batch):
    return apply_fn(params, {"ids": batch["ids"]}, deterministic=True, rngs=None)["logits"]

  return jax.jit(
    jax.shard_map(
      local_logits, mesh=mesh, in_specs=(P(), P(AXIS)), out_specs=P(AXIS), check_vma=False
    )
  )
