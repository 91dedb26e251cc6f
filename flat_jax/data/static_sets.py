"""Fixed adversarial test sets (AdvGLUE-style): sentences someone already attacked and validated,
scored by plain accuracy, the same for every model compared.

Two layouts are read:
- JSON lines, one {"text": ..., "label": ...} per line (a label id, or a name from the dataset's
  label names);
- AdvGLUE's dev.json: {"sst2": [{"idx": 0, "sentence": ..., "label": 0}, ...], "qqp": [...], ...};
  the task of the run's dataset is taken (labels 0 negative / 1 positive, as our SST-2).
"""

from __future__ import annotations

import json
import pathlib
from typing import Sequence

from flat_jax.data.datasets import DataError

ADVGLUE_TASKS = {"sst2": "sst2"}  # our dataset name -> AdvGLUE's task key


def _label(value, label_names: Sequence[str], where: str) -> int:
  if isinstance(value, str) and value in label_names:
    return list(label_names).index(value)
  try:
    label = int(value)
  except (TypeError, ValueError):
    raise DataError(
      f"{where}: label {value!r} is neither a class id nor one of {', '.join(label_names)}"
    ) from None
  if not 0 <= label < len(label_names):
    raise DataError(f"{where}: label {label} out of range 0..{len(label_names) - 1}")
  return label


def load_static_set(path, dataset: str, label_names: Sequence[str]) -> tuple[list[str], list[int]]:
  """(texts, labels) of a static adversarial set; DataError names the file and line of a problem."""
  path = pathlib.Path(path).expanduser()
  if not path.is_file():
    raise DataError(f"eval.static_sets: {path}: no such file")
  try:
    text = path.read_text(encoding="utf-8")
  except UnicodeDecodeError as e:
    raise DataError(f"{path}: not UTF-8 text ({e.reason})") from None
  stripped = text.lstrip()
  if stripped.startswith("{") and "\n{" not in stripped.rstrip():  # one JSON object: AdvGLUE
    try:
      tasks = json.loads(text)
    except json.JSONDecodeError as e:
      raise DataError(f"{path}:{e.lineno}: not JSON ({e.msg})") from None
    task = ADVGLUE_TASKS.get(dataset, dataset)
    if task not in tasks:
      raise DataError(
        f"{path}: no {task!r} task (AdvGLUE layout; it has {', '.join(sorted(tasks))})"
      )
    rows = [
      (r.get("sentence"), r.get("label"), f"{path}: {task}[{i}]") for i, r in enumerate(tasks[task])
    ]
  else:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
      if not line.strip():
        continue
      try:
        row = json.loads(line)
      except json.JSONDecodeError as e:
        raise DataError(f"{path}:{number}: not JSON ({e.msg})") from None
      rows.append((row.get("text"), row.get("label"), f"{path}:{number}"))
  texts, labels = [], []
  for sentence, label, where in rows:
    if not isinstance(sentence, str) or not sentence.strip():
      raise DataError(f"{where}: no text")
    texts.append(sentence)
    labels.append(_label(label, label_names, where))
  if not texts:
    raise DataError(f"{path}: no rows")
  return texts, labels
