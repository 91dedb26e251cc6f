"""The cheap dropout draw: the rate it claims, fresh draws per key and position, nn.Dropout's contract."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from flat_jax.models.dropout import Dropout, keep_mask, quantized


@pytest.mark.parametrize("shape", [(400, 384), (250, 12, 250), (999, 383), (7,)])
@pytest.mark.parametrize("keep_prob", [0.9, 0.5, 0.2])
def test_keep_rate_matches_the_quantized_probability(shape, keep_prob):
  mask = np.asarray(keep_mask(jax.random.PRNGKey(11), keep_prob, shape))
  assert mask.shape == shape and mask.dtype == bool
  if mask.size < 1000:
    return
  p = quantized(keep_prob)
  assert abs(p - keep_prob) <= 2**-17
  test = stats.binomtest(int(mask.sum()), mask.size, p)
  assert test.pvalue > 1e-4, (mask.mean(), p)


def test_draws_are_independent_across_positions_and_the_four_per_hash():
  """Each hash decides four neighbours on the last axis (or four consecutive flat positions): those
  four, and any two positions, must be uncorrelated, and the 16-bit chunks uniform."""
  mask = np.asarray(keep_mask(jax.random.PRNGKey(5), 0.5, (20000, 8)), np.float64)
  corr = np.corrcoef(mask.T)
  off_diagonal = corr[~np.eye(8, dtype=bool)]
  assert np.abs(off_diagonal).max() < 0.03
  for q in (0.1, 0.3, 0.7):  # the chunks are uniform: every threshold gives its own rate
    rate = np.asarray(keep_mask(jax.random.PRNGKey(5), q, (20000, 8))).mean()
    assert abs(rate - q) < 0.01


def test_other_keys_give_other_masks_and_typed_keys_the_same_as_raw():
  a = keep_mask(jax.random.PRNGKey(0), 0.5, (64, 32))
  b = keep_mask(jax.random.PRNGKey(1), 0.5, (64, 32))
  assert 0.4 < float(jnp.mean(a != b)) < 0.6
  assert bool(jnp.all(a == keep_mask(jax.random.key(0), 0.5, (64, 32))))
  rbg = keep_mask(jax.random.key(0, impl="rbg"), 0.5, (64, 32))  # the library's draw
  assert rbg.shape == (64, 32) and 0.4 < float(jnp.mean(rbg)) < 0.6


def test_a_vmapped_draw_equals_the_draws_one_key_at_a_time():
  """The train step draws per text under vmap; batching the key must not change any text's mask."""
  keys = jax.random.split(jax.random.PRNGKey(2), 5)
  batched = jax.vmap(lambda k: keep_mask(k, 0.9, (12, 40)))(keys)
  for i in range(5):
    np.testing.assert_array_equal(batched[i], keep_mask(keys[i], 0.9, (12, 40)))


def test_module_keeps_the_expectation_and_is_the_identity_when_deterministic():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(256, 300)), jnp.float32) + 3.0
  layer = Dropout(0.1)
  assert bool(jnp.all(layer.apply({}, x, deterministic=True) == x))
  y = layer.apply({}, x, deterministic=False, rngs={"dropout": jax.random.PRNGKey(4)})
  kept = y != 0
  np.testing.assert_allclose(y[kept], x[kept] / quantized(0.9), rtol=1e-6)
  assert abs(float(kept.mean()) - quantized(0.9)) < 0.005
  assert abs(float(y.mean() / x.mean()) - 1.0) < 0.01
  assert bool(
    jnp.all(
      Dropout(1.0).apply({}, x, deterministic=False, rngs={"dropout": jax.random.PRNGKey(4)}) == 0
    )
  )
  assert bool(jnp.all(Dropout(0.0).apply({}, x, deterministic=False) == x))
  nearly_all = jax.grad(
    lambda v: (
      Dropout(1 - 2**-18)
      .apply({}, v, deterministic=False, rngs={"dropout": jax.random.PRNGKey(4)})
      .sum()
    )
  )(x)
  assert bool(jnp.all(nearly_all == 0))  # keeps nothing, and no 0/0 in the gradient


def test_gradient_flows_through_kept_positions_only():
  x = jnp.ones((32, 16))
  rngs = {"dropout": jax.random.PRNGKey(9)}
  grad = jax.grad(lambda v: Dropout(0.25).apply({}, v, deterministic=False, rngs=rngs).sum())(x)
  kept = Dropout(0.25).apply({}, x, deterministic=False, rngs=rngs) != 0
  np.testing.assert_allclose(grad, np.where(kept, 1 / quantized(0.75), 0.0), rtol=1e-6)
