import logging
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from flat_jax.models.params import merge_params
from flat_jax.training.checkpoints import StageCheckpoints, load_params
from flat_jax.training.state import TrainState


def _state(seed=0):
  params = {"dense": {"kernel": jnp.arange(6.0).reshape(2, 3) + seed, "bias": jnp.zeros(3)}}
  return TrainState.create(apply_fn=None, params=params, tx=optax.adam(0.1), seed=seed)


def test_save_restore_keeps_optax_structure_and_best(tmp_path):
  ckpt = StageCheckpoints(tmp_path / "stage")
  state = _state()
  grads = jax.tree.map(jnp.ones_like, state.params)
  s1 = state.apply_gradients(grads)
  ckpt.save(
    1, s1, {"epoch": 1, "best_dev_accuracy": 60.0, "best_epoch": 1, "seconds": 1.0}, is_best=True
  )
  s2 = s1.apply_gradients(grads)
  ckpt.save(
    2, s2, {"epoch": 2, "best_dev_accuracy": 60.0, "best_epoch": 1, "seconds": 2.0}, is_best=False
  )
  restored, meta = StageCheckpoints(tmp_path / "stage").restore_latest(_state())
  assert meta["epoch"] == 2 and int(restored.step) == 2
  assert jax.tree.structure(restored.opt_state) == jax.tree.structure(
    s2.opt_state
  )  # tuples, not lists
  for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(s2)):
    np.testing.assert_array_equal(a, b)
  best = ckpt.restore_best_params(state.params)
  np.testing.assert_array_equal(best["dense"]["kernel"], s1.params["dense"]["kernel"])
  np.testing.assert_array_equal(
    load_params(tmp_path / "stage")["dense"]["kernel"], s1.params["dense"]["kernel"]
  )


def test_corrupt_newest_checkpoint_falls_back_with_warning(tmp_path, caplog):
  ckpt = StageCheckpoints(tmp_path / "stage")
  state = _state()
  for epoch in (1, 2):
    state = state.apply_gradients(jax.tree.map(jnp.ones_like, state.params))
    ckpt.save(
      epoch,
      state,
      {"epoch": epoch, "best_dev_accuracy": 1.0, "best_epoch": 1, "seconds": 0.0},
      is_best=epoch == 1,
    )
  newest = tmp_path / "stage" / "latest" / "2"
  for root, _, files in os.walk(newest):
    for name in files:
      with open(os.path.join(root, name), "wb") as f:
        f.write(b"garbage")
  with caplog.at_level(logging.WARNING):
    restored, meta = StageCheckpoints(tmp_path / "stage").restore_latest(_state())
  assert meta["epoch"] == 1 and int(restored.step) == 1
  assert any("unreadable" in r.message for r in caplog.records)
  # the damaged step is gone, so saving epoch 2 again really writes it (Orbax skips existing steps)
  assert not newest.exists()
  again = StageCheckpoints(tmp_path / "stage")
  again.save(
    2, state, {"epoch": 2, "best_dev_accuracy": 1.0, "best_epoch": 1, "seconds": 0.0}, is_best=False
  )
  restored, meta = StageCheckpoints(tmp_path / "stage").restore_latest(_state())
  assert meta["epoch"] == 2 and int(restored.step) == 2


def _garble(folder):
  for root, _, files in os.walk(folder):
    for name in files:
      with open(os.path.join(root, name), "wb") as f:
        f.write(b"garbage")


def test_damaged_best_falls_back_to_the_previous_best(tmp_path, caplog):
  ckpt = StageCheckpoints(tmp_path / "stage")
  state, saved = _state(), {}
  for epoch, dev in ((1, 60.0), (2, 55.0), (3, 70.0)):
    state = state.apply_gradients(jax.tree.map(jnp.ones_like, state.params))
    best = dev >= 60.0
    ckpt.save(
      epoch,
      state,
      {
        "epoch": epoch,
        "best_dev_accuracy": 70.0 if epoch == 3 else 60.0,
        "best_epoch": 3 if epoch == 3 else 1,
        "seconds": 0.0,
      },
      is_best=best,
    )
    saved[epoch] = state.params
  _garble(tmp_path / "stage" / "best" / "3")
  with caplog.at_level(logging.WARNING):
    params, meta = StageCheckpoints(tmp_path / "stage").restore_best(_state().params)
    loaded = load_params(tmp_path / "stage")
  assert meta["best_epoch"] == 1 and meta["best_dev_accuracy"] == 60.0
  np.testing.assert_array_equal(params["dense"]["kernel"], saved[1]["dense"]["kernel"])
  np.testing.assert_array_equal(loaded["dense"]["kernel"], saved[1]["dense"]["kernel"])
  assert any("best/3 unreadable" in r.message for r in caplog.records)


def test_merge_params_takes_matching_arrays_and_keeps_new_ones():
  target = {"embed": {"embedding": jnp.zeros((4, 2))}, "word_mask": {"bias": jnp.ones(2)}}
  loaded = {"embed": {"embedding": jnp.full((4, 2), 7.0)}, "head": {"bias": jnp.ones(3)}}
  merged = merge_params(target, loaded)
  assert float(merged["embed"]["embedding"][0, 0]) == 7.0
  np.testing.assert_array_equal(merged["word_mask"]["bias"], jnp.ones(2))
  with pytest.raises(ValueError, match="no parameter matches"):
    merge_params({"other": {"w": jnp.ones(1)}}, loaded)
