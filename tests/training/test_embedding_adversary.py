"""Embedding-space adversarial training (modes pgd and freelb): the ascent, the norm bound, the
reduction to base at K = 0, and the train step's use of them on a real SST-2 batch."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from flat_jax.config import preset
from flat_jax.data.vocab import Vocab
from flat_jax.models.classifier import build_word_classifier
from flat_jax.training.embedding_adversary import (
  EmbeddingAdversary,
  ascend,
  project,
  random_start,
  text_norm,
)
from flat_jax.training.objectives import make_objective
from flat_jax.training.state import TrainState
from flat_jax.training.step import make_mesh, make_train_step, model_apply_fn


@pytest.fixture(scope="module")
def cnn_and_batch(sst2_splits):
  """An SST-2 CNN over the first 300 training texts' vocabulary, and one batch of 16 of them."""
  train = sst2_splits.train
  vocab = Vocab.build(train.texts[:300])
  ids, _ = vocab.encode_batch(train.texts[:16], 20)
  model_config = preset("sst2", "cnn").model
  model_config.cnn_num_filters = 16  # the real architecture, narrower: these tests compile a lot
  model = build_word_classifier(model_config, len(vocab), 2, 16)
  params = model.init(jax.random.PRNGKey(0), ids[:1])["params"]
  batch = {
    "ids": ids,
    "label": np.asarray(train.labels[:16], np.int32),
    "weight": np.ones(16, np.float32),
    "index": np.arange(16, dtype=np.int32),
  }
  return model, params, batch


def _fns(model):
  apply_fn = model_apply_fn(model)
  embed_fn = lambda p, x: model.apply({"params": p}, x, method=model.embed_tokens)
  return apply_fn, embed_fn


def _one_step(model, params, batch, adversary, mode="pgd", mesh=None):
  apply_fn, embed_fn = _fns(model)
  state = TrainState.create(apply_fn=apply_fn, params=params, tx=optax.sgd(0.1), seed=3)
  step = make_train_step(
    apply_fn,
    make_objective(mode if adversary else "base"),
    mesh or make_mesh(),
    adversary=adversary,
    embed_fn=embed_fn,
  )
  return step(state, batch)


@pytest.mark.parametrize("kind", ["pgd", "freelb"])
def test_zero_steps_is_the_base_step_exactly(cnn_and_batch, kind):
  model, params, batch = cnn_and_batch
  base_state, base_metrics = _one_step(model, params, batch, None)
  state, metrics = _one_step(model, params, batch, EmbeddingAdversary(kind, steps=0), mode=kind)
  assert float(metrics["loss"]) == float(base_metrics["loss"])
  for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(base_state.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # with steps the update differs: the adversary is not a no-op
  moved, moved_metrics = _one_step(
    model, params, batch, EmbeddingAdversary(kind, steps=2), mode=kind
  )
  assert float(moved_metrics["loss"]) > float(base_metrics["loss"])
  assert not np.allclose(
    np.asarray(moved.params["head"]["kernel"]), np.asarray(base_state.params["head"]["kernel"])
  )


def test_pgd_loss_grows_with_the_steps_freelb_averages_the_path(cnn_and_batch):
  model, params, batch = cnn_and_batch
  pgd = [
    float(
      _one_step(model, params, batch, EmbeddingAdversary("pgd", steps=k, step_size=0.5))[1]["loss"]
    )
    for k in (0, 1, 3)
  ]
  assert pgd[0] < pgd[1] < pgd[2]
  freelb = float(
    _one_step(
      model, params, batch, EmbeddingAdversary("freelb", steps=3, step_size=0.5), mode="freelb"
    )[1]["loss"]
  )
  # the mean over delta_0..delta_2 lies between the clean loss and PGD's loss at delta_3
  assert pgd[0] < freelb < pgd[2]


def test_an_ascent_step_increases_the_loss_on_a_fixed_batch(cnn_and_batch):
  model, params, batch = cnn_and_batch
  ids, labels = jnp.asarray(batch["ids"]), jnp.asarray(batch["label"])
  real = ids != 0

  def loss(delta):
    logits = model.apply({"params": params}, ids, perturbation=delta)["logits"]
    return jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits, labels))

  delta = jnp.zeros(ids.shape + (16,))
  before = loss(delta)
  after = loss(ascend(delta, jax.grad(loss)(delta), real, step_size=0.1, max_norm=0.0))
  assert float(after) > float(before)
  # and descending (the opposite direction) decreases it: the sign is the gradient's
  assert float(loss(ascend(delta, -jax.grad(loss)(delta), real, 0.1, 0.0))) < float(before)


def test_the_perturbation_respects_its_bound_and_never_touches_padding():
  rng = np.random.RandomState(0)
  real = jnp.asarray([[True] * 5 + [False] * 3, [True] * 2 + [False] * 6])
  delta = random_start(jax.random.PRNGKey(0), (2, 8, 4), real, 0.05)
  np.testing.assert_allclose(text_norm(delta, real) <= 0.05 + 1e-6, True)
  assert float(jnp.abs(delta[0, 5:]).max()) == 0.0 and float(jnp.abs(delta[1, 2:]).max()) == 0.0
  for _ in range(10):  # steps far larger than the bound
    grad = jnp.asarray(rng.normal(size=(2, 8, 4)), jnp.float32)
    delta = ascend(delta, grad, real, step_size=1.0, max_norm=0.3)
    np.testing.assert_allclose(np.asarray(text_norm(delta, real)), 0.3, rtol=1e-5)
    assert float(jnp.abs(delta[0, 5:]).max()) == 0.0 and float(jnp.abs(delta[1, 2:]).max()) == 0.0
  # unbounded (max_norm 0): each step adds exactly step_size of norm along the gradient's direction
  grad = jnp.ones((2, 8, 4))
  moved = ascend(jnp.zeros((2, 8, 4)), grad, real, step_size=0.7, max_norm=0.0)
  np.testing.assert_allclose(np.asarray(text_norm(moved, real)), 0.7, rtol=1e-6)
  inside = project(moved * 0.1, real, 0.3)
  np.testing.assert_allclose(np.asarray(inside), np.asarray(moved * 0.1))  # inside the ball: kept


@pytest.mark.parametrize("kind", ["pgd", "freelb"])
def test_the_step_follows_the_algorithm_written_out_by_hand(cnn_and_batch, kind):
  """One SGD step (lr 1, so the update is the gradient) against PGD / FreeLB written with explicit
  jax.grad calls on the whole batch: no dropout, no random start, one row with an adversarial twin
  (the adv objective: CE(x) + CE(x'))."""
  model, params, batch = cnn_and_batch
  model = model.clone(encoder=model.encoder.clone(dropout=0.0))
  twin = dict(
    batch, adv_ids=np.roll(batch["ids"], 1, axis=0), has_adv=(np.arange(16) % 2).astype(np.int32)
  )
  K, step_size = 3, 0.5
  ids = jnp.concatenate([twin["ids"], twin["adv_ids"]])
  weights = jnp.concatenate([jnp.ones(16), jnp.asarray(twin["has_adv"], jnp.float32)])
  labels = jnp.concatenate([twin["label"], twin["label"]])
  real = ids != 0

  def loss(p, delta):
    logits = model.apply({"params": p}, ids, perturbation=delta)["logits"]
    return jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits, labels) * weights) / 16.0

  delta = jnp.zeros(ids.shape + (16,))
  if kind == "pgd":
    for _ in range(K):
      delta = ascend(delta, jax.grad(loss, argnums=1)(params, delta), real, step_size, 0.0)
    expected = jax.grad(loss)(params, delta)
  else:
    expected = jax.tree.map(jnp.zeros_like, params)
    for _ in range(K):
      g, g_delta = jax.grad(loss, argnums=(0, 1))(params, delta)
      expected = jax.tree.map(lambda e, x: e + x / K, expected, g)
      delta = ascend(delta, g_delta, real, step_size, 0.0)
  adversary = EmbeddingAdversary(kind, steps=K, step_size=step_size, init_magnitude=0.0)
  apply_fn, embed_fn = _fns(model)
  state = TrainState.create(apply_fn=apply_fn, params=params, tx=optax.sgd(1.0), seed=3)
  step = make_train_step(
    apply_fn, make_objective(kind), make_mesh(), adversary=adversary, embed_fn=embed_fn
  )
  new_state, _ = step(state, twin)
  for name in ("head", "encoder"):
    got = jax.tree.map(lambda a, b: a - b, params[name], new_state.params[name])
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected[name])):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-6)
