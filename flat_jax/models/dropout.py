"""Dropout whose random draw costs a quarter of jax.random.bernoulli's.

With JAX's default (partitionable) threefry, `bernoulli` hashes once per element and keeps 32 of the
64 bits each hash makes. Here every hash decides four elements, 16 bits each, so the keep
probability is a multiple of 2^-16 (rate 0.1 keeps 0.8999939 instead of 0.9; kept inputs are divided
by that probability, so in float32 the expectation is exact). This matters
for attention dropout at long lengths: BERT at IMDB's 250 pieces spends about 28% of its training
step drawing dropout masks with `bernoulli` (benchmarks/train_step.py; README, Performance).
Keys of another PRNG implementation (rbg) go through `jax.random.bernoulli` unchanged.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.extend.random as jax_random
import jax.numpy as jnp
import numpy as np
from jax import lax

_BITS = 16
_HALF = np.uint32((1 << _BITS) - 1)


def quantized(keep_prob: float) -> float:
  """The probability keep_mask keeps with: keep_prob rounded to a multiple of 2^-16."""
  return round(keep_prob * (1 << _BITS)) / (1 << _BITS)


def keep_mask(key, keep_prob: float, shape) -> jax.Array:
  """Boolean array of `shape`, True with probability quantized(keep_prob), from a threefry key
  (raw uint32[2] or typed)."""
  shape = tuple(shape)
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    if str(jax.random.key_impl(key)) != "threefry2x32":  # rbg keys: the library's draw
      return jax.random.bernoulli(key, quantized(keep_prob), shape)
    key = jax.random.key_data(key)
  elif key.shape != (2,):
    return jax.random.bernoulli(key, quantized(keep_prob), shape)
  size = math.prod(shape)
  # Four 16-bit draws per counter; grouped along the last axis when it allows, so the mask is a
  # plain reshape of the hash output (no slicing that would stop XLA fusing it into its use).
  along_last = bool(shape) and shape[-1] % 4 == 0
  counts_shape = shape[:-1] + (shape[-1] // 4,) if along_last else (-(-size // 4),)
  counts = lax.iota(np.uint32, math.prod(counts_shape)).reshape(counts_shape)
  high, low = jax_random.threefry2x32_p.bind(key[0], key[1], jnp.zeros_like(counts), counts)
  draws = jnp.stack([high & _HALF, high >> _BITS, low & _HALF, low >> _BITS], axis=-1)
  keep = draws < np.uint32(quantized(keep_prob) * (1 << _BITS))
  if along_last:
    return keep.reshape(shape)
  return keep.reshape(-1)[:size].reshape(shape)


class Dropout(nn.Module):
  """nn.Dropout's contract (rate, `deterministic`, the "dropout" RNG stream) with `keep_mask`."""

  rate: float
  rng_collection: str = "dropout"

  @nn.compact
  def __call__(self, inputs, deterministic: bool):
    if deterministic or self.rate == 0.0:
      return inputs
    keep_prob = quantized(1.0 - self.rate)
    if keep_prob == 0.0:  # rate 1, or within 2^-17 of it
      return jnp.zeros_like(inputs)
    keep = keep_mask(self.make_rng(self.rng_collection), keep_prob, inputs.shape)
    return jnp.where(keep, inputs / keep_prob, jnp.zeros_like(inputs))
