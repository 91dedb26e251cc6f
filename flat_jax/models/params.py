"""Parameter trees: a model started from another model's parameters."""

from __future__ import annotations

import logging


def merge_params(target: dict, loaded: dict, source: str = "") -> dict:
  """Copies every loaded array whose path and shape exist in `target` (e.g. a base model into a
  FLAT model that adds the word mask); logs what was left at its initial value."""
  from flax import traverse_util

  flat_target = traverse_util.flatten_dict(target)
  flat_loaded = traverse_util.flatten_dict(loaded)
  taken, kept = 0, []
  for key, value in flat_target.items():
    if key in flat_loaded and flat_loaded[key].shape == value.shape:
      flat_target[key] = flat_loaded[key]
      taken += 1
    else:
      kept.append("/".join(key))
  if not taken:
    raise ValueError(f"restore {source}: no parameter matches this model")
  unused = [k for k in flat_loaded if k not in flat_target]
  logging.info(
    "restored %d arrays from %s; initialised here: %s; unused: %d",
    taken,
    source,
    ", ".join(kept) or "none",
    len(unused),
  )
  return traverse_util.unflatten_dict(flat_target)
