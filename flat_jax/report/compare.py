"""Robustness compared across runs from their attack records, with no new search.

common set (A2T's protocol, Yoo & Qi 2021): after-attack accuracy on the test examples that every
compared model classifies correctly. Each run attacks the same first eval.num_examples test
examples, each example with its own seed, so restricting the records to that intersection is the
same as attacking only it: the runs' accuracies then compare like with like, where each run's own
figure counts the examples its clean errors skip.

transfer matrix: the adversarial texts of one run's test attack (every record's perturbed text:
the successful adversarial example, a failed attack's last attempt, a skipped example's original)
read by every other run's model. Row = the model the texts were crafted against, column = the model
that reads them, cell = its accuracy; the diagonal is each run's own after-attack accuracy.
"""

from __future__ import annotations

import json
import pathlib
from typing import Sequence

import numpy as np

from flat_jax.report.plots import run_label


def _records(workdir: pathlib.Path, recipe: str) -> dict[int, dict]:
  from flat_jax.attacks.generate import read_records

  path = workdir / "attacks" / f"test_{recipe}.jsonl"
  return read_records(path) if path.exists() else {}


def _names(workdirs: Sequence[pathlib.Path]) -> list[str]:
  names = []
  for w in workdirs:
    results = json.loads((w / "results.json").read_text())
    names.append(f"{w.name} ({run_label(results)})")
  return names


def common_set(records_by_run: Sequence[dict[int, dict]]) -> list[int]:
  """Indices every run attacked and classified correctly before the attack (not skipped)."""
  if not records_by_run:
    return []
  shared = set.intersection(*(set(r) for r in records_by_run))
  return sorted(i for i in shared if all(r[i]["status"] != "skipped" for r in records_by_run))


def common_set_accuracy(records: dict[int, dict], indices: Sequence[int]) -> float | None:
  """After-attack accuracy (%) on `indices`: the share whose attack failed."""
  if not indices:
    return None
  return 100.0 * sum(records[i]["status"] == "failed" for i in indices) / len(indices)


def common_set_table(workdirs: Sequence, recipes: Sequence[str]) -> str:
  workdirs = [pathlib.Path(w) for w in workdirs]
  names = _names(workdirs)
  header = ["run"]
  columns = []
  for recipe in recipes:
    by_run = [_records(w, recipe) for w in workdirs]
    if not all(by_run):
      continue
    indices = common_set(by_run)
    own = [
      100.0 * sum(r["status"] == "failed" for r in recs.values()) / len(recs) for recs in by_run
    ]
    columns.append([(common_set_accuracy(recs, indices), o) for recs, o in zip(by_run, own)])
    header.append(f"{recipe}: AA on the common {len(indices)} (own AA on {len(by_run[0])})")
  if not columns:
    return "(no attack recorded for every run)"
  rows = [
    [name] + [("-" if c[i][0] is None else f"{c[i][0]:.2f}") + f" ({c[i][1]:.2f})" for c in columns]
    for i, name in enumerate(names)
  ]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(row) + " |" for row in rows]
  return (
    "After-attack accuracy (%) on the test examples every compared model classifies correctly "
    "(A2T's common set), the run's own after-attack accuracy in brackets.\n\n" + "\n".join(lines)
  )


def transfer_matrix(workdirs: Sequence, recipe: str) -> tuple[list[str], np.ndarray]:
  """(run names, matrix[i, j] = accuracy (%) of run j's model on run i's adversarial texts); NaN
  where run i has no records of `recipe`."""
  from flat_jax.attacks.bridge import PredictionBridge
  from flat_jax.training.artifacts import load_trained

  workdirs = [pathlib.Path(w) for w in workdirs]
  sources = [_records(w, recipe) for w in workdirs]
  matrix = np.full((len(workdirs), len(workdirs)), np.nan)
  for j, target in enumerate(workdirs):
    bridge = PredictionBridge.from_trained(load_trained(target))
    for i, records in enumerate(sources):
      if not records:
        continue
      ordered = [records[k] for k in sorted(records)]
      predicted = np.asarray(bridge([r["perturbed"] for r in ordered])).argmax(-1)
      matrix[i, j] = 100.0 * float(np.mean(predicted == np.asarray([r["label"] for r in ordered])))
  return _names(workdirs), matrix


def transfer_table(workdirs: Sequence, recipes: Sequence[str]) -> str:
  parts = []
  for recipe in recipes:
    names, matrix = transfer_matrix(workdirs, recipe)
    if np.isnan(matrix).all():
      continue
    lines = [
      "| crafted against \\ read by | " + " | ".join(names) + " |",
      "|" + "---|" * (len(names) + 1),
    ]
    for name, row in zip(names, matrix):
      lines.append(
        f"| {name} | " + " | ".join("-" if np.isnan(v) else f"{v:.2f}" for v in row) + " |"
      )
    parts.append(f"**{recipe}**\n\n" + "\n".join(lines))
  return (
    "Transfer matrix: accuracy (%) of each model (column) on the adversarial test texts crafted "
    "against each model (row); the diagonal is the run's own after-attack accuracy.\n\n"
    + ("\n\n".join(parts) or "(no attack records)")
  )
