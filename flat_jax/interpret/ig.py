"""Integrated Gradients (Sundararajan, Taly & Yan 2017) with jax.grad along the straight path.

The explained output is the softmax probability of the target class, f(x) = softmax(logits(x))[y].
A probability (not a logit) keeps every class's attribution on the same [0, 1] scale, which the
per-class consistency average of FLAT compares; completeness,
sum(attributions) = f(x) - f(baseline), holds for this f up to the quadrature error.

The input space is the word (or piece) embedding matrix (B, L, D) *before* the word mask, so the mask
is part of the explained function. The path runs from the baseline to the input on real tokens only:
at padding positions the baseline is the input itself, so padding neither moves along the path nor
gets attribution, and completeness holds whatever the <pad> embedding is.

Model-agnostic: pass `embed_fn(params, ids) -> (B, L, D)` and
`logits_fn(params, embedded, ids, token_mask) -> (B, C)` (ids for models that need them beside the
embeddings, as BERT does for its attention mask). For a WordClassifier `model`:

  embed_fn = lambda p, ids: model.apply({"params": p}, ids, method=model.embed_tokens)
  logits_fn = lambda p, e, ids, m: model.apply({"params": p}, e, m, deterministic=True,
                                               method=model.classify_embedded)["logits"]
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

EmbedFn = Callable[..., jax.Array]
LogitsFn = Callable[..., jax.Array]
RULES = ("trapezoid", "midpoint")


def path_points(steps: int, rule: str = "midpoint") -> tuple[np.ndarray, np.ndarray]:
  """Alphas in [0, 1] and their quadrature weights (summing to 1) for `steps` gradient evaluations.

  midpoint (default): alphas (i + 1/2) / steps, equal weights.
  trapezoid: alphas 0, 1/(steps-1), ..., 1 with the end points at half weight.

  The midpoint rule never evaluates the gradient at the baseline itself. A zero-embedding baseline
  sits on kinks and ties of these models (ReLU(0) of the zero-bias convolutions, a max-pool over
  identical time steps), so the gradient *at* alpha = 0 is not the limit of the gradients next to
  it, and the trapezoid rule converges only as 1/steps there: on random CNN/LSTM classifiers its
  worst completeness error at 50 steps was 1.4-3.9% against under 0.9% for the midpoint rule."""
  if rule == "trapezoid":
    if steps < 2:
      raise ValueError(f"the trapezoid rule needs steps >= 2, got {steps}")
    alphas = np.linspace(0.0, 1.0, steps)
    weights = np.full(steps, 1.0 / (steps - 1))
    weights[[0, -1]] *= 0.5
  elif rule == "midpoint":
    if steps < 1:
      raise ValueError(f"steps must be >= 1, got {steps}")
    alphas = (np.arange(steps) + 0.5) / steps
    weights = np.full(steps, 1.0 / steps)
  else:
    raise ValueError(f"unknown rule {rule!r}; expected one of {', '.join(RULES)}")
  return alphas.astype(np.float32), weights.astype(np.float32)


def _baseline_of(baseline, embedded, ids, token_mask):
  """The baseline on real tokens, the input itself on padding."""
  if baseline is None:
    base = jnp.zeros_like(embedded)
  elif callable(baseline):
    base = baseline(embedded, ids, token_mask)
  else:
    base = baseline
  base = jnp.broadcast_to(jnp.asarray(base, embedded.dtype), embedded.shape)
  return jnp.where(token_mask[..., None], base, embedded)


def _class_probability(logits_fn: LogitsFn):
  """f(params, embedded, ids, mask, labels) -> (B,) softmax probability of each row's label."""

  def prob(params, embedded, ids, token_mask, labels):
    logits = logits_fn(params, embedded, ids, token_mask)
    probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
    return jnp.take_along_axis(probs, labels[:, None], axis=-1)[:, 0]

  return prob


def _summed_gradient(prob):
  # Rows are independent (inference mode), so the gradient of the batch sum w.r.t. the embeddings
  # is each row's own gradient: one backward pass for the whole batch.
  return jax.grad(lambda p, e, i, m, y: jnp.sum(prob(p, e, i, m, y)), argnums=1)


def _finish(attr_full, token_mask, f_x, f_base, labels):
  attributions = jnp.sum(attr_full, axis=-1) * token_mask
  return {
    "attributions": attributions,
    "labels": labels,
    "f_input": f_x,
    "f_baseline": f_base,
    "delta": jnp.sum(attributions, axis=-1) - (f_x - f_base),
  }


def make_integrated_gradients(
  embed_fn: EmbedFn,
  logits_fn: LogitsFn,
  steps: int = 50,
  batch_chunk: int | None = None,
  *,
  baseline=None,
  rule: str = "midpoint",
):
  """A jitted `ig(params, ids, token_mask, labels=None) -> dict` over a batch.

  All `steps` path points of the batch go through one vectorised gradient evaluation of
  steps * B rows. `batch_chunk` bounds memory: at most that many alphas (batch_chunk * B rows) at a
  time, the chunks run by `lax.map` inside the same jitted call. `baseline`: None (zero
  embeddings), an array broadcastable to (B, L, D), or `fn(embedded, ids, token_mask) -> array`.
  `labels`: the class to explain per row; None explains the predicted class.

  Returns attributions (B, L) per token (sum over the embedding dim of (x - baseline) times the
  path-averaged gradient; zero on padding), labels (B,), f_input and f_baseline (B,), the
  probability of the explained class at x and at the baseline, and delta (B,) =
  sum(attributions) - (f_input - f_baseline), the completeness error."""
  alphas, weights = path_points(steps, rule)
  chunk = len(alphas) if batch_chunk is None else max(1, min(int(batch_chunk), len(alphas)))
  pad = -len(alphas) % chunk
  # extra points with zero weight fill the last chunk (an interior alpha: no 0 * NaN at a kink)
  alphas = np.concatenate([alphas, np.full(pad, alphas[-1], np.float32)]).reshape(-1, chunk)
  weights = np.concatenate([weights, np.zeros(pad, np.float32)]).reshape(-1, chunk)
  prob = _class_probability(logits_fn)
  grad = _summed_gradient(prob)

  def chunk_gradient(params, embedded, base, ids, token_mask, labels, alpha_chunk, weight_chunk):
    """sum_a w_a * grad f(base + a (x - base)) for one chunk of alphas, as one batch."""
    a = alpha_chunk[:, None, None, None]
    points = base[None] + a * (embedded - base)[None]  # (chunk, B, L, D)
    flat = points.reshape((-1,) + embedded.shape[1:])
    tile = lambda v: jnp.tile(v, (alpha_chunk.shape[0],) + (1,) * (v.ndim - 1))
    g = grad(params, flat, tile(ids), tile(token_mask), tile(labels)).reshape(points.shape)
    return jnp.einsum("c,cbld->bld", weight_chunk, g)

  @jax.jit
  def ig(params, ids, token_mask, labels=None):
    token_mask = token_mask.astype(bool)
    embedded = embed_fn(params, ids)
    base = _baseline_of(baseline, embedded, ids, token_mask)
    if labels is None:
      labels = jnp.argmax(logits_fn(params, embedded, ids, token_mask), axis=-1)
    labels = labels.astype(jnp.int32)
    run = lambda aw: chunk_gradient(params, embedded, base, ids, token_mask, labels, *aw)
    if alphas.shape[0] == 1:
      avg_grad = run((jnp.asarray(alphas[0]), jnp.asarray(weights[0])))
    else:
      avg_grad = jnp.sum(jax.lax.map(run, (jnp.asarray(alphas), jnp.asarray(weights))), axis=0)
    f_x = prob(params, embedded, ids, token_mask, labels)
    f_base = prob(params, base, ids, token_mask, labels)
    return _finish((embedded - base) * avg_grad, token_mask, f_x, f_base, labels)

  return ig


@functools.lru_cache(maxsize=32)
def _step_gradient(logits_fn: LogitsFn, jit_step: bool):
  # cached per logits_fn, so repeated loop calls reuse one compiled step
  grad = _summed_gradient(_class_probability(logits_fn))
  return jax.jit(grad) if jit_step else grad


def integrated_gradients_loop(
  embed_fn: EmbedFn,
  logits_fn: LogitsFn,
  params,
  ids,
  token_mask,
  labels=None,
  *,
  steps: int = 50,
  baseline=None,
  rule: str = "midpoint",
  jit_step: bool = True,
):
  """The reference: a Python loop over the path points, one jax.grad call (on the batch) per alpha.

  Same outputs as `make_integrated_gradients`. `jit_step` jits the per-step gradient (compiled once
  per logits_fn and reused by every step and call); False runs it op by op."""
  alphas, weights = path_points(steps, rule)
  prob = _class_probability(logits_fn)
  grad = _step_gradient(logits_fn, jit_step)
  token_mask = jnp.asarray(token_mask).astype(bool)
  embedded = embed_fn(params, ids)
  base = _baseline_of(baseline, embedded, ids, token_mask)
  if labels is None:
    labels = jnp.argmax(logits_fn(params, embedded, ids, token_mask), axis=-1)
  labels = jnp.asarray(labels, jnp.int32)
  avg_grad = jnp.zeros_like(embedded)
  for alpha, weight in zip(alphas, weights):
    point = base + alpha * (embedded - base)
    avg_grad = avg_grad + weight * grad(params, point, ids, token_mask, labels)
  f_x = prob(params, embedded, ids, token_mask, labels)
  f_base = prob(params, base, ids, token_mask, labels)
  return _finish((embedded - base) * avg_grad, token_mask, f_x, f_base, labels)


def attributions_by_class(ig, params, ids, token_mask, num_classes: int) -> jax.Array:
  """(B, C, L): the attributions of every class, as the per-class consistency average needs."""
  rows = ids.shape[0]
  per_class = [
    ig(params, ids, token_mask, jnp.full((rows,), c, jnp.int32))["attributions"]
    for c in range(num_classes)
  ]
  return jnp.stack(per_class, axis=1)


def merge_to_words(token_attr, word_ids, num_words: int):
  """Sums piece attributions (..., T) into words (..., num_words); word_ids (..., T) gives each
  piece's word index, -1 for special tokens and padding (dropped). numpy in, numpy out; jax in
  (or traced), jax out."""
  xp = jnp if isinstance(token_attr, jax.Array) or isinstance(word_ids, jax.Array) else np
  token_attr, word_ids = xp.asarray(token_attr), xp.asarray(word_ids)
  one_hot = word_ids[..., None] == xp.arange(num_words)  # (..., T, W); -1 matches nothing
  return xp.sum(token_attr[..., None] * one_hot, axis=-2)
