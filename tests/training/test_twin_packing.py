"""Rows without an adversarial twin forwarded once (batching.split_twins): the same rows, the same
loss and the same update as the whole batch forwarded as (original, twin) pairs."""

import jax
import numpy as np
import optax
import pytest

from flat_jax.config import preset
from flat_jax.data.batching import split_twins
from flat_jax.data.datasets import load_dataset
from flat_jax.data.vocab import Vocab
from flat_jax.models.classifier import build_word_classifier
from flat_jax.training.objectives import make_objective, replaced_positions
from flat_jax.training.state import TrainState
from flat_jax.training.step import make_mesh, make_train_step, model_apply_fn, shard_batch

LENGTH = 24


def _batch(has_adv, weight=None):
  n = len(has_adv)
  return {
    "ids": np.arange(n)[:, None] + np.zeros((n, 3), np.int32),
    "label": np.arange(n) % 2,
    "weight": np.ones(n, np.float32) if weight is None else np.asarray(weight, np.float32),
    "index": np.arange(n, dtype=np.int32),
    "adv_ids": -np.ones((n, 3), np.int32),
    "has_adv": np.asarray(has_adv, bool),
    "replaced": np.zeros((n, 3), bool),
  }


def test_split_twins_keeps_every_row_once_and_all_twins_in_pairs():
  has_adv = [1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 1, 0]
  weight = [1] * 14 + [0, 0]  # the last two rows: padding of a last batch
  parts = split_twins(_batch(has_adv, weight), multiple=4)
  pairs, singles = parts["pairs"], parts["singles"]
  # 5 real twin rows and the first 3 rows without a twin fill 8 pair slots: 16 + 8 texts, not 2 x 16;
  # row 14 is a padding copy of a twin row (weight 0): no twin to forward
  assert pairs["index"].tolist() == [0, 3, 7, 11, 12, 1, 2, 4]
  assert pairs["has_adv"].tolist() == [True] * 5 + [False] * 3
  assert singles["index"].tolist() == [5, 6, 8, 9, 10, 13, 14, 15]
  assert not {"adv_ids", "has_adv", "replaced"} & set(singles)
  np.testing.assert_array_equal(pairs["ids"][:, 0], pairs["index"])  # rows move with their data
  assert singles["weight"].tolist() == [1, 1, 1, 1, 1, 1, 0, 0]
  assert pairs["weight"].sum() + singles["weight"].sum() == 14


def test_split_twins_keeps_the_batch_when_splitting_saves_nothing():
  assert set(split_twins(_batch([1] * 8), multiple=2)) == {"whole"}  # every row has a twin
  assert set(split_twins(_batch([1, 0] * 4), multiple=8)) == {"whole"}  # 4 twins fill all 8 slots
  assert set(split_twins(_batch([0] * 8), multiple=2)) == {"singles"}


@pytest.fixture(scope="module")
def sst2_rows(shared_data):
  """64 real SST-2 training sentences; 16 get a twin with two words replaced by other vocabulary
  words (the step, not the attack, is under test)."""
  c = preset("sst2", "cnn")
  c.data.train_limit = 400
  train = load_dataset(c.data, seed=0).train
  vocab = Vocab.build(train.texts)
  ids = vocab.encode_batch(train.texts[:64], LENGTH)[0]
  rs = np.random.RandomState(0)
  adv_ids, has_adv = ids.copy(), np.zeros(64, bool)
  for row in rs.choice(64, 16, replace=False):
    real = np.flatnonzero(ids[row])
    adv_ids[row, rs.choice(real, min(2, len(real)), replace=False)] = rs.randint(2, len(vocab), 2)[
      : min(2, len(real))
    ]
    has_adv[row] = True
  batch = {
    "ids": ids,
    "label": np.asarray(train.labels[:64], np.int32),
    "weight": np.ones(64, np.float32),
    "index": np.arange(64, dtype=np.int32),
    "adv_ids": adv_ids,
    "has_adv": has_adv,
  }
  batch["replaced"] = np.asarray(replaced_positions(ids, adv_ids)) & has_adv[:, None]
  return batch, len(vocab)


@pytest.mark.parametrize("model_name, mode", [("cnn", "flat"), ("lstm", "flat"), ("cnn", "adv")])
def test_packed_step_is_the_whole_batch_step(sst2_rows, model_name, mode):
  batch, vocab_size = sst2_rows
  c = preset("sst2", model_name)
  model = build_word_classifier(c.model, vocab_size, 2, 16, with_mask=mode == "flat")
  params = model.init(jax.random.PRNGKey(0), batch["ids"][:2])["params"]
  apply_fn = model_apply_fn(model)
  mesh = make_mesh()
  step = make_train_step(apply_fn, make_objective(mode, 0.1, 0.001), mesh)
  state = TrainState.create(
    apply_fn=apply_fn, params=params, tx=optax.sgd(1.0), seed=3
  )  # update = -gradient
  parts = split_twins(batch, multiple=16)
  assert set(parts) == {"pairs", "singles"} and len(parts["pairs"]["weight"]) == 16
  assert len(parts["singles"]["weight"]) == 48

  whole_state, whole = step(state, shard_batch(batch, mesh))
  packed_state, packed = step(state, {k: shard_batch(v, mesh) for k, v in parts.items()})
  whole, packed = jax.device_get((whole, packed))
  assert set(whole) == set(packed)
  for key in whole:
    np.testing.assert_allclose(packed[key], whole[key], rtol=1e-5, err_msg=key)
  if mode == "flat":
    assert whole["importance_l1"] > 0 and whole["entropy"] > 0
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7),
    jax.device_get(packed_state.params),
    jax.device_get(whole_state.params),
  )
  # the twin is not ignored: without it the loss changes
  no_twin = dict(batch, has_adv=np.zeros(64, bool))
  _, alone = step(state, shard_batch(no_twin, mesh))
  assert abs(float(alone["loss"]) - float(whole["loss"])) > 1e-3


def test_parts_share_the_whole_batchs_trimmed_length():
  """Word-piece batches are trimmed before the split: one length bucket for both parts, so packing
  adds compiled shapes only through the size of the pairs part."""
  from flat_jax.data.batching import PaddingTrim
  from flat_jax.training.loop import place_batch

  batch = _batch([1, 0, 0, 0, 0, 0, 0, 0])
  lengths = [3, 20, 4, 5, 6, 7, 8, 9]  # the long text is a single, the twin row is short
  ids = np.zeros((8, 64), np.int32)
  for row, n in enumerate(lengths):
    ids[row, :n] = 5
  batch = dict(
    batch,
    ids=ids,
    word_ids=ids.copy(),
    adv_ids=ids.copy(),
    adv_word_ids=ids.copy(),
    replaced=np.zeros((8, 64), bool),
  )
  trim = PaddingTrim(pad_id=0, buckets=(16, 32, 48, 64))
  parts = place_batch(batch, make_mesh(), trim, pack_twins=True)
  assert set(parts) == {"pairs", "singles"}
  assert {part["ids"].shape[1] for part in parts.values()} == {32}
  assert parts["pairs"]["adv_word_ids"].shape == (2, 32) and "adv_word_ids" not in parts["singles"]
