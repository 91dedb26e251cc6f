"""make_train_step(donate_state=True), as the pipeline runs it: the same training, the old state's
buffers reused (the caller's old state is gone), and fit's checkpoints and best params intact."""

import jax
import numpy as np
import optax
import pytest

from flat_jax.config import preset
from flat_jax.data.datasets import load_dataset
from flat_jax.data.vocab import Vocab
from flat_jax.models.classifier import build_word_classifier
from flat_jax.training.objectives import make_objective
from flat_jax.training.state import TrainState
from flat_jax.training.step import make_mesh, make_train_step, model_apply_fn, shard_batch


@pytest.fixture(scope="module")
def setup(shared_data):
  c = preset("sst2", "lstm")
  c.data.train_limit = 200
  train = load_dataset(c.data, seed=0).train
  vocab = Vocab.build(train.texts)
  ids = vocab.encode_batch(train.texts[:96], 20)[0]
  batches = [
    {
      "ids": ids[i : i + 32],
      "label": np.asarray(train.labels[i : i + 32], np.int32),
      "weight": np.ones(32, np.float32),
      "index": np.arange(i, i + 32, dtype=np.int32),
    }
    for i in (0, 32, 64)
  ]
  model = build_word_classifier(c.model, len(vocab), 2, 16, with_mask=True)
  params = model.init(jax.random.PRNGKey(0), ids[:2])["params"]
  apply_fn = model_apply_fn(model)
  return apply_fn, params, batches


def _train(setup, donate: bool):
  apply_fn, params, batches = setup
  mesh = make_mesh()
  step = make_train_step(apply_fn, make_objective("flat", 0.1, 0.001), mesh, donate_state=donate)
  state = TrainState.create(
    apply_fn=apply_fn, params=jax.tree.map(np.array, params), tx=optax.adam(0.01), seed=1
  )
  state = jax.device_put(state)
  first = state
  losses = []
  for batch in batches:
    state, metrics = step(state, shard_batch(batch, mesh))
    losses.append(float(metrics["loss"]))
  return first, state, losses


def test_donated_steps_train_exactly_as_copying_ones_and_consume_the_old_state(setup):
  first_kept, kept, kept_losses = _train(setup, donate=False)
  first_donated, donated, donated_losses = _train(setup, donate=True)
  assert donated_losses == kept_losses
  jax.tree.map(
    np.testing.assert_array_equal, jax.device_get(donated.params), jax.device_get(kept.params)
  )
  donated_leaves = jax.tree.leaves(first_donated.opt_state) + jax.tree.leaves(first_donated.params)
  assert any(leaf.is_deleted() for leaf in donated_leaves if isinstance(leaf, jax.Array))
  assert not any(
    leaf.is_deleted() for leaf in jax.tree.leaves(first_kept) if isinstance(leaf, jax.Array)
  )
