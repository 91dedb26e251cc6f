import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flat_jax.config import preset
from flat_jax.models.classifier import build_word_classifier
from flat_jax.models.word_mask import WordMask, binary_entropy, mask_entropy


@pytest.fixture(scope="module")
def mask_and_params():
  mask = WordMask(hidden=16)
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 7, 8))
  params = mask.init({"params": jax.random.PRNGKey(1)}, x, deterministic=True)
  return mask, params, x


def test_inference_multiplies_by_keep_probability(mask_and_params):
  mask, params, x = mask_and_params
  out, keep, applied = mask.apply(params, x, deterministic=True)
  np.testing.assert_allclose(applied, keep)
  np.testing.assert_allclose(out, x * keep[..., None], rtol=1e-6)
  assert np.all((keep > 0) & (keep < 1))


def test_training_sample_is_hard_and_follows_keep_probability(mask_and_params):
  mask, params, x = mask_and_params
  _, keep, applied = mask.apply(
    params, x, deterministic=False, rngs={"mask": jax.random.PRNGKey(2)}
  )
  assert set(np.unique(np.asarray(applied)).tolist()) <= {0.0, 1.0}
  # the keep rate of many samples approaches the keep-probability
  big = jnp.broadcast_to(x[:1, :1], (4000, 1, 8))
  _, p, samples = mask.apply(params, big, deterministic=False, rngs={"mask": jax.random.PRNGKey(3)})
  assert abs(float(samples.mean()) - float(p[0, 0])) < 0.03


def test_straight_through_gradient_reaches_mask_network(mask_and_params):
  mask, params, x = mask_and_params

  def f(p):
    out, _, _ = mask.apply(p, x, deterministic=False, rngs={"mask": jax.random.PRNGKey(4)})
    return jnp.sum(out)

  grads = jax.grad(f)(params)
  assert all(float(jnp.abs(g).sum()) > 0 for g in jax.tree.leaves(grads))


def test_entropy_excludes_padding():
  keep = jnp.array([[0.5, 0.9, 0.01]])
  real = jnp.array([[True, True, False]])
  expected = np.log(2) + float(binary_entropy(jnp.array(0.9)))
  np.testing.assert_allclose(mask_entropy(keep, real), [expected], rtol=1e-5)
  # a probability rounded a hair above 1 must not give NaN (float32 softmax can do that)
  assert np.isfinite(float(binary_entropy(jnp.float32(1.0000001))))
  assert np.all(
    np.isfinite(jax.grad(lambda p: binary_entropy(p).sum())(jnp.array([0.0, 1.0, 0.5])))
  )


def test_classifier_importance_is_the_token_keep_probability():
  c = preset("sst2", "cnn").model
  model = build_word_classifier(c, 30, 2, 8, with_mask=True)
  ids = jnp.array([[5, 6, 7, 8, 9, 0]])
  params = model.init(jax.random.PRNGKey(0), ids)["params"]
  out = model.apply({"params": params}, ids)
  phi = model.apply({"params": params}, ids, method=model.phi)
  np.testing.assert_allclose(out["phi"][:, :5], phi[:, :5], rtol=1e-6)  # real tokens
  no_mask = build_word_classifier(c, 30, 2, 8, with_mask=False)
  p2 = no_mask.init(jax.random.PRNGKey(0), ids)["params"]
  assert "word_mask" not in p2 and "phi" not in no_mask.apply({"params": p2}, ids)


def test_word_models_do_not_depend_on_padding_length():
  for name in ("cnn", "lstm"):
    model = build_word_classifier(preset("sst2", name).model, 30, 2, 8, with_mask=True)
    short = jnp.array([[5, 6, 7, 0], [9, 0, 0, 0]])
    long = jnp.pad(short, ((0, 0), (0, 11)))
    params = model.init(jax.random.PRNGKey(0), long)["params"]
    np.testing.assert_allclose(
      model.apply({"params": params}, short)["logits"],
      model.apply({"params": params}, long)["logits"],
      atol=1e-6,
    )
