"""Variational word mask (Chen & Ji 2020; FLAT section 3).

An inference network reads each token's embedding (Linear -> tanh -> Linear to [drop, keep]
logits). Training multiplies the embedding by a hard straight-through Gumbel-softmax sample of the
keep/drop decision; inference multiplies it by the keep-probability. Because the mask sees only the
word's own embedding, the keep-probability of a word is its global importance phi(word).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

DROP, KEEP = 0, 1


def binary_entropy(p, eps: float = 1e-6):
  # softmax can round a probability a hair above 1 in float32: clip, or log(1 - p) is NaN
  p = jnp.clip(p, eps, 1.0 - eps)
  return -(p * jnp.log(p) + (1.0 - p) * jnp.log1p(-p))


ENTROPY_REDUCTIONS = ("sum", "mean", "padded_mean")


def mask_entropy(phi, token_mask, reduction: str = "sum"):
  """H(W | x) per text over real tokens only (padding and special tokens excluded).

  "sum": the masks are independent given x, so the entropy is the sum of the tokens' binary
  entropies (the paper's factorised entropy); its weight against the one CE term per text grows
  with the text's length. "mean": the mean over the text's real tokens, one entropy term per text
  whatever its length. "padded_mean": the authors' code, the mean over every padded position with
  padding and special tokens counted (a B x L mean of the batch is the mean of these per-text
  means); it shrinks beta by about the padded length."""
  if reduction == "padded_mean":
    return jnp.mean(binary_entropy(phi), -1)
  weights = token_mask.astype(phi.dtype)
  total = jnp.sum(binary_entropy(phi) * weights, -1)
  if reduction == "sum":
    return total
  if reduction == "mean":
    return total / jnp.maximum(jnp.sum(weights, -1), 1.0)
  raise ValueError(f"entropy reduction must be one of {ENTROPY_REDUCTIONS}, not {reduction!r}")


class WordMask(nn.Module):
  hidden: int = 400
  temperature: float = 1.0

  def setup(self):
    self.hidden_layer = nn.Dense(self.hidden)
    self.logit_layer = nn.Dense(2)

  def logits(self, embedded):
    return self.logit_layer(jnp.tanh(self.hidden_layer(embedded)))

  def phi(self, embedded):
    return _phi_of_logits(self.logits(embedded))

  def __call__(self, embedded, *, deterministic: bool):
    """Returns (masked embeddings, keep-probabilities, the mask values applied)."""
    logits = self.logits(embedded)
    phi = _phi_of_logits(logits)
    if deterministic:
      mask = phi
    else:
      gumbel = jax.random.gumbel(self.make_rng("mask"), logits.shape, logits.dtype)
      margin = logits[..., KEEP] + gumbel[..., KEEP] - logits[..., DROP] - gumbel[..., DROP]
      soft = jax.nn.sigmoid(margin / self.temperature)  # the keep entry of the Gumbel softmax
      hard = (margin > 0).astype(soft.dtype)
      mask = hard - jax.lax.stop_gradient(soft) + soft  # straight-through
    return embedded * mask[..., None], phi, mask


def _phi_of_logits(logits):
  # softmax over two logits, written as a sigmoid of their difference: XLA's 2-wide softmax rounds
  # differently with the batch shape, which made N-device runs drift from 1-device runs
  return jax.nn.sigmoid(logits[..., KEEP] - logits[..., DROP])
