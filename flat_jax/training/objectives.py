"""Training objectives over rows of (original, optional adversarial twin).

Model outputs carry a text axis: leaves are (B, T, ...) with T = 1 (originals only) or T = 2
(original, adversarial twin). Every objective returns (loss_sum, metric_sums): sums over the
(weighted) rows of the local shard; the train step divides by the global weight.

  base: CE(x)
  adv (eq. 5): CE(x) + [twin] CE(x')
  flat (eq. 1-4): CE(x) - beta H(mask|x) + [twin] (CE(x') - beta H(mask|x') + gamma L_imp(x, x'))
where L_imp = sum over replaced positions of |phi(x_i) - phi(x'_i)| (eq. 3).

Where each input of the FLAT loss comes from (phi: the word mask's keep-probability, the paper's
global importance; one name everywhere):
  - H(mask|x): outputs "phi" per token (a word, or a word piece: each one a mask variable), with
    "token_mask" marking the real tokens;
  - L_imp's phi: outputs "word_phi" per word (a word model's "phi"; for word pieces the max over a
    word's pieces, models/bert.py word_max);
  - L_imp's positions: batch "replaced", the words the round's attack replaced (attacks/augment.py,
    from the record's word alignment).

Switches for the authors' release (config: train.loss_on_probs, flat.entropy_reduction,
flat.importance_positions): cross-entropy on softmax probabilities instead of logits, the entropy's
mean over every padded position, and L_imp over every aligned position.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from flat_jax.data.vocab import PAD_ID
from flat_jax.models.word_mask import mask_entropy


def cross_entropy(logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def cross_entropy_of_probs(logits, labels):
  """The authors' loss: their models end in a softmax and torch's CrossEntropyLoss applies another,
  so the loss is bounded (for 2 classes within log(1 + e^-1) .. log(1 + e)) and its gradient small."""
  return optax.softmax_cross_entropy_with_integer_labels(jax.nn.softmax(logits, -1), labels)


def replaced_positions(ids, adv_ids):
  """Aligned positions where the adversarial text has a different token (both real tokens)."""
  return (ids != adv_ids) & (ids != PAD_ID) & (adv_ids != PAD_ID)


IMPORTANCE_POSITIONS = ("replaced", "aligned")


def importance_l1(phi_orig, phi_adv, replaced):
  """L_imp per row: sum of |phi(x_i) - phi(x'_i)| over the replaced positions (True entries);
  the authors' variant passes every position."""
  return jnp.sum(jnp.abs(phi_orig - phi_adv) * replaced.astype(phi_orig.dtype), axis=-1)


def _twin(batch):
  return batch["has_adv"].astype(jnp.float32) if "has_adv" in batch else None


def _sums(batch, logits, **terms):
  weight = batch["weight"]
  correct = jnp.sum((jnp.argmax(logits[:, 0], -1) == batch["label"]) * weight)
  return {"correct": correct, **{k: jnp.sum(v * weight) for k, v in terms.items()}}


def base_objective(loss_on_probs: bool = False) -> Callable:
  ce_fn = cross_entropy_of_probs if loss_on_probs else cross_entropy

  def objective(outputs, batch):
    logits = outputs["logits"]
    loss = ce_fn(logits[:, 0], batch["label"])
    metrics = _sums(batch, logits, loss=loss)
    return metrics["loss"], metrics

  return objective


def adv_objective(loss_on_probs: bool = False) -> Callable:
  ce_fn = cross_entropy_of_probs if loss_on_probs else cross_entropy

  def objective(outputs, batch):
    logits = outputs["logits"]
    loss = ce_fn(logits[:, 0], batch["label"])
    twin = _twin(batch)
    if twin is not None:
      loss = loss + twin * ce_fn(logits[:, 1], batch["label"])
    metrics = _sums(batch, logits, loss=loss)
    return metrics["loss"], metrics

  return objective


def flat_objective(
  beta: float,
  gamma: float,
  entropy_reduction: str = "sum",
  loss_on_probs: bool = False,
  importance_positions: str = "replaced",
) -> Callable:
  if importance_positions not in IMPORTANCE_POSITIONS:
    raise ValueError(
      f"importance_positions must be one of {IMPORTANCE_POSITIONS}, not {importance_positions!r}"
    )
  ce_fn = cross_entropy_of_probs if loss_on_probs else cross_entropy

  def objective(outputs, batch):
    logits, phi, token_mask = outputs["logits"], outputs["phi"], outputs["token_mask"]
    ce = ce_fn(logits[:, 0], batch["label"])
    entropy = mask_entropy(phi[:, 0], token_mask[:, 0], entropy_reduction)
    imp = jnp.zeros_like(ce)
    twin = _twin(batch)
    if twin is not None:
      ce = ce + twin * ce_fn(logits[:, 1], batch["label"])
      entropy = entropy + twin * mask_entropy(phi[:, 1], token_mask[:, 1], entropy_reduction)
      if "word_phi" not in outputs:
        raise ValueError(
          "L_imp needs the model's word_phi (a word-piece model: apply it with word_ids)"
        )
      word_phi = outputs["word_phi"]
      if importance_positions == "aligned":
        positions = jnp.ones(word_phi[:, 0].shape, jnp.bool_)
      else:
        positions = (
          batch["replaced"]
          if "replaced" in batch
          else replaced_positions(batch["ids"], batch["adv_ids"])
        )
      imp = twin * importance_l1(word_phi[:, 0], word_phi[:, 1], positions)
    loss = ce - beta * entropy + gamma * imp
    metrics = _sums(batch, logits, loss=loss, ce=ce, entropy=entropy, importance_l1=imp)
    return metrics["loss"], metrics

  return objective


def make_objective(
  mode: str,
  beta: float = 0.0,
  gamma: float = 0.0,
  entropy_reduction: str = "sum",
  *,
  loss_on_probs: bool = False,
  importance_positions: str = "replaced",
) -> Callable:
  if mode == "base":
    return base_objective(loss_on_probs)
  if mode in ("adv", "pgd", "freelb"):  # pgd, freelb: the same loss at perturbed embeddings
    return adv_objective(loss_on_probs)
  if mode == "flat":
    return flat_objective(beta, gamma, entropy_reduction, loss_on_probs, importance_positions)
  raise ValueError(f"unknown mode {mode!r}")
