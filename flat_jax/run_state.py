"""A run's state in its workdir: results.json, and the config the run was started with.

Re-running the same command in a workdir resumes the run there; a different config over it is
refused (unless config.overwrite), and a setting added to flat_jax after the run started counts as
its default. Only the primary process writes; every process reads and decides alike.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import shutil

from flat_jax import distributed


class RunError(RuntimeError):
  pass


def read_results(workdir) -> dict:
  """results.json, or {} when there is none; a damaged one is set aside (results.json.damaged) with
  a warning and rebuilt by the run from what the workdir holds (checkpoints, attack records)."""
  path = pathlib.Path(workdir) / "results.json"
  if not path.exists():
    return {}
  try:
    with open(path, encoding="utf-8") as f:
      results = json.load(f)
    if not isinstance(results, dict):
      raise ValueError("not a JSON object")
    return results
  except (ValueError, UnicodeDecodeError) as e:
    if not distributed.is_primary():
      return {}
    try:
      os.replace(path, path.with_name("results.json.damaged"))
    except OSError as moved:  # a read-only workdir keeps it where it is, and says so
      logging.warning("%s is damaged (%s) and cannot be set aside (%s)", path, e, moved.strerror)
      return {}
    logging.warning(
      "%s is damaged (%s); set aside as results.json.damaged, rebuilt from the workdir's "
      "checkpoints and attack records",
      path,
      e,
    )
    return {}


def write_results(workdir, results: dict) -> None:
  """Atomically, by the primary process only (all processes hold the same results)."""
  if not distributed.is_primary():
    return
  write_json_atomic(pathlib.Path(workdir) / "results.json", results)


def write_json_atomic(path: pathlib.Path, value) -> None:
  """A kill or a full disk mid-write leaves the previous file, never half of one; an OS error
  names the file (a buffered write's ENOSPC comes at close, without a filename)."""
  tmp = path.with_name(path.name + ".tmp")
  try:
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump(value, f, indent=2, sort_keys=False)
    os.replace(tmp, path)
  except OSError as e:
    tmp.unlink(missing_ok=True)
    if e.filename is None:
      raise OSError(e.errno, e.strerror, str(path)) from e
    raise


def comparable_config(config) -> dict:
  settings = json.loads(json.dumps(config.to_dict(), default=list))
  for key in ("overwrite", "stage", "tensorboard"):  # none changes what a run computes
    settings.pop(key, None)
  return settings


def _new_keys(saved: dict, current: dict, prefix: str = "") -> list[str]:
  """Keys of `current` that `saved` lacks (settings added to flat_jax after the run started)."""
  keys = []
  for key, value in current.items():
    if key not in saved:
      keys.append(prefix + key)
    elif isinstance(value, dict) and isinstance(saved[key], dict):
      keys += _new_keys(saved[key], value, f"{prefix}{key}.")
  return keys


def same_config(config_file: pathlib.Path, config) -> bool:
  """Whether the run saved in `config_file` used `config`. A setting the saved run did not have yet
  counts as the same (its default is what the older code did); it is logged."""
  saved, current = json.loads(config_file.read_text()), comparable_config(config)
  added = _new_keys(saved, current)
  if added:
    pruned = json.loads(json.dumps(current))
    for dotted in added:
      *parents, last = dotted.split(".")
      node = pruned
      for name in parents:
        node = node[name]
      node.pop(last)
    if pruned != saved:
      return False
    logging.warning(
      "%s predates the settings %s; taking them from the current config",
      config_file,
      ", ".join(added),
    )
    return True
  return saved == current


def prepare_workdir(config, workdir) -> tuple[pathlib.Path, dict | None]:
  """Creates the workdir. Returns the results when the same config already completed there (all
  stages, or the training stages for stage=train); refuses a different config over a completed run
  unless config.overwrite is set. Every process reads and decides; then the primary writes."""
  workdir = pathlib.Path(workdir)
  previous = {} if config.overwrite else read_results(workdir)
  config_file = workdir / "config.json"
  complete = previous.get("status") == "finished" or (
    previous.get("status") == "trained" and config.stage == "train"
  )
  if complete:
    if config_file.exists() and same_config(config_file, config):
      return workdir, previous
    raise RunError(
      f"{workdir} holds a finished run ({previous.get('dataset')} {previous.get('model')} "
      f"{previous.get('mode')}) with a different config; pass --config.overwrite=True "
      f"to replace it, or use another --workdir."
    )
  if (
    not config.overwrite
    and config_file.exists()
    and (workdir / "checkpoints").exists()
    and not same_config(config_file, config)
  ):
    raise RunError(
      f"{workdir} holds an unfinished run with a different config; re-run with the same "
      f"config to resume it, or pass --config.overwrite=True to start over."
    )
  distributed.barrier("workdir checked")
  if distributed.is_primary():
    if config.overwrite:
      for name in ("checkpoints", "adversarial", "attacks"):
        shutil.rmtree(workdir / name, ignore_errors=True)
      for name in ("results.json", "metrics.jsonl", "vocab.json", "importance.npy"):
        (workdir / name).unlink(missing_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(config_file, comparable_config(config))
  distributed.barrier("workdir prepared")
  return workdir, None


def finished_read_only(config, workdir: pathlib.Path, reason: str) -> dict:
  """A workdir this process cannot write: a finished run of the same config there is only read
  (archived results, a shared read-only copy); anything that would write is refused up front."""
  if config.overwrite:
    raise RunError(
      f"{workdir} is not writable ({reason}): --config.overwrite=True cannot replace "
      f"the run there; make it writable, or use another --workdir"
    )
  previous = read_results(workdir)
  finished = (previous.get("status") == "finished" and config.stage in ("all", "train")) or (
    previous.get("status") == "trained" and config.stage == "train"
  )
  if (
    finished and (workdir / "config.json").exists() and same_config(workdir / "config.json", config)
  ):
    logging.info(
      "%s (%s): this run already finished (test accuracy %.2f); nothing to do",
      workdir,
      reason,
      previous["standard_accuracy"],
    )
    return previous
  what = (
    "holds no finished run of this config"
    if config.stage in ("all", "train")
    else f"must be written to by stage={config.stage}"
  )
  raise RunError(
    f"{workdir} is not writable ({reason}) and {what}: make it writable, or copy it "
    f"and pass the copy as --workdir"
  )
