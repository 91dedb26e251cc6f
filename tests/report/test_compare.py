"""Runs compared from their attack records: A2T's common set and the transfer matrix."""

import shutil

import numpy as np

from flat_jax.attacks.generate import AttackJob, attack_examples, summarize
from flat_jax.report import compare
from flat_jax.report.__main__ import main as report_main


def _rec(i, status):
  return {"index": i, "status": status, "label": 0}


def test_the_common_set_is_the_intersection_of_the_examples_each_model_gets_right():
  a = {0: _rec(0, "failed"), 1: _rec(1, "skipped"), 2: _rec(2, "successful"), 3: _rec(3, "failed")}
  b = {
    0: _rec(0, "successful"),
    1: _rec(1, "failed"),
    2: _rec(2, "failed"),
    3: _rec(3, "skipped"),
    4: _rec(4, "failed"),
  }
  indices = compare.common_set([a, b])
  assert indices == [0, 2]  # 1 and 3 skipped by one of them; 4 not attacked in a
  assert compare.common_set_accuracy(a, indices) == 50.0
  assert compare.common_set_accuracy(b, indices) == 50.0
  assert compare.common_set_accuracy(a, []) is None


def test_transfer_matrix_diagonal_is_the_runs_own_after_attack_accuracy(
  model_dir, sst2_splits, tmp_path
):
  """Two copies of the victim, one attacked with PWWS: its row reads the same texts with the same
  model twice (both cells its own after-attack accuracy); the other copy has no records (NaN)."""
  runs = []
  for name in ("a", "b"):
    run = tmp_path / name
    shutil.copytree(model_dir, run)
    runs.append(run)
  test = sst2_splits.test
  records = attack_examples(
    AttackJob(str(runs[0]), "pwws"),
    test.texts,
    test.labels,
    runs[0] / "attacks" / "test_pwws.jsonl",
    indices=range(12),
  )
  own = summarize(records)["accuracy"]
  names, matrix = compare.transfer_matrix(runs, "pwws")
  assert names[0].startswith("a (CNN-")
  np.testing.assert_allclose(matrix[0], [own, own])
  assert np.isnan(matrix[1]).all()
  # the CLI: the common set of a run with itself is its own attacked examples
  (runs[1] / "attacks").mkdir(exist_ok=True)
  shutil.copy(runs[0] / "attacks" / "test_pwws.jsonl", runs[1] / "attacks" / "test_pwws.jsonl")
  out = tmp_path / "compare.md"
  assert (
    report_main([str(runs[0]), str(runs[1]), "--common_set", "--transfer", "--out", str(out)]) == 0
  )
  text = out.read_text()
  attacked = sum(r["status"] != "skipped" for r in records)
  assert f"pwws: AA on the common {attacked} (own AA on 12)" in text
  assert f"| {own:.2f} | {own:.2f} |" in text
