"""Orbax checkpoints of one training stage: the latest epochs (to resume) and the best-dev params.

DIR/checkpoints/<stage>/latest/<epoch>: train state + loop bookkeeping, the last two epochs kept so
that a corrupt newest checkpoint falls back to the one before it.
DIR/checkpoints/<stage>/best/<epoch>: params of the best dev epoch so far, and of the best before it.
Orbax writes into a temporary folder and renames it when complete, so a run killed while saving
leaves no half checkpoint behind among the steps. A step that cannot be read (a damaged disk, a
copy cut short) is removed with a warning, so that the epoch is saved afresh instead of Orbax
skipping a step that exists, and the one before it is used.
"""

from __future__ import annotations

import logging
import pathlib
import shutil

import jax
import orbax.checkpoint as ocp


def _state_tree(state) -> dict:
  return {
    "step": state.step,
    "params": state.params,
    "opt_state": state.opt_state,
    "rng": state.rng,
  }


def _abstract(tree):
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


class StageCheckpoints:
  def __init__(self, directory):
    self.directory = pathlib.Path(directory).absolute()
    options = lambda keep: ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
    self.latest = ocp.CheckpointManager(self.directory / "latest", options=options(2))
    self.best = ocp.CheckpointManager(self.directory / "best", options=options(2))

  def save(self, epoch: int, state, meta: dict, *, is_best: bool) -> None:
    # best first: a run killed between the two saves re-runs this epoch and finds the same best
    if is_best and epoch not in self.best.all_steps():
      self.best.save(
        epoch,
        args=ocp.args.Composite(
          params=ocp.args.StandardSave(state.params), meta=ocp.args.JsonSave(meta)
        ),
      )
      self.best.wait_until_finished()
    self.latest.save(
      epoch,
      args=ocp.args.Composite(
        state=ocp.args.StandardSave(_state_tree(state)), meta=ocp.args.JsonSave(meta)
      ),
    )
    self.latest.wait_until_finished()

  def _drop(self, manager, name: str, step: int, error: Exception) -> None:
    logging.warning(
      "checkpoint %s/%s/%d unreadable (%s: %s); removed, using the one before it",
      self.directory,
      name,
      step,
      type(error).__name__,
      str(error)[:200],
    )
    shutil.rmtree(self.directory / name / str(step), ignore_errors=True)
    manager.reload()

  def restore_latest(self, state):
    """(state, meta) from the newest readable checkpoint, or None when there is none."""
    for step in sorted(self.latest.all_steps(), reverse=True):
      try:
        restored = self.latest.restore(
          step,
          args=ocp.args.Composite(
            state=ocp.args.StandardRestore(_abstract(_state_tree(state))),
            meta=ocp.args.JsonRestore(),
          ),
        )
      except Exception as e:  # corrupt or partial: fall back to the one before
        self._drop(self.latest, "latest", step, e)
        continue
      tree = restored["state"]
      return state.replace(
        step=tree["step"], params=tree["params"], opt_state=tree["opt_state"], rng=tree["rng"]
      ), dict(restored["meta"])
    return None

  def restore_best(self, params_like):
    """(params, meta) of the newest readable best checkpoint (meta: the loop's bookkeeping when it
    was saved, its best_dev_accuracy and best_epoch those of these params), or None."""
    for step in sorted(self.best.all_steps(), reverse=True):
      try:
        restored = self.best.restore(
          step,
          args=ocp.args.Composite(
            params=ocp.args.StandardRestore(_abstract(params_like)), meta=ocp.args.JsonRestore()
          ),
        )
      except Exception as e:
        self._drop(self.best, "best", step, e)
        continue
      return restored["params"], dict(restored["meta"])
    return None

  def clear_latest(self) -> None:
    """Removes every latest/ step (the stage is trained again: Orbax skips saving a step at or
    below its newest one, so the old steps would shadow the new epochs)."""
    for step in self.latest.all_steps():
      shutil.rmtree(self.directory / "latest" / str(step), ignore_errors=True)
    self.latest.reload()

  def restore_best_params(self, params_like):
    restored = self.restore_best(params_like)
    return None if restored is None else restored[0]

  def close(self) -> None:
    self.latest.close()
    self.best.close()


def load_params(path) -> dict:
  """Params from any saved checkpoint: a stage folder, its latest/ or best/ folder, or one step, as
  arrays on this process's first device. Read by this process alone (Orbax's default reader waits
  for every process of a multi-process run), so one process may load a model the others do not."""
  path = pathlib.Path(path).absolute()
  candidates = [path / "best", path / "latest", path] if (path / "best").exists() else [path]
  for folder in candidates:
    if not folder.is_dir():
      continue
    steps = sorted((int(p.name) for p in folder.iterdir() if p.name.isdigit()), reverse=True)
    for step_dir in [folder / str(step) for step in steps] or [folder]:
      for item in ("params", "state"):
        if (step_dir / item).is_dir():
          try:
            tree = _read_alone(step_dir / item)
          except Exception as e:  # damaged: the step before it, or the next folder
            logging.warning(
              "checkpoint %s unreadable (%s: %s); trying an older one",
              step_dir,
              type(e).__name__,
              str(e)[:200],
            )
            continue
          return tree["params"] if item == "state" else tree
  raise FileNotFoundError(f"no readable Orbax checkpoint with params under {path}")


def _read_alone(directory: pathlib.Path) -> dict:
  me = jax.process_index()
  reader = ocp.StandardCheckpointer(
    multiprocessing_options=ocp.options.MultiprocessingOptions(
      primary_host=me, active_processes={me}
    )
  )
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree.map(
    lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
    ocp.StandardCheckpointHandler().metadata(directory).tree,
  )
  return reader.restore(directory, target)
