"""flat_jax.sweep: a 2 x 1 grid on a small TREC slice, selected on dev robustness, killed and resumed."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from flat_jax import sweep


def _cli(workdir, *extra):
  return [
    sys.executable,
    "-m",
    "flat_jax.sweep",
    "--config",
    "configs/trec_cnn.py",
    "--workdir",
    str(workdir),
    "--grid",
    "flat.beta=0.1,1.0",
    "--grid",
    "flat.gamma=0.001",
    "--dev_examples",
    "8",
    "--config.mode=flat",
    "--config.rounds=1",
    "--config.data.train_limit=200",
    "--config.attack.num_examples=8",
    "--config.train.epochs=1",
    *extra,
  ]


def _comparable(workdir):
  summary = json.loads((workdir / "sweep.json").read_text())
  for row in summary["points"]:
    row.pop("workdir")
  points = {}
  for row in summary["points"]:
    results = json.loads((workdir / row["point"] / "results.json").read_text())
    results.pop("timings_s")
    points[row["point"]] = results
  return summary, points


def test_grid_parsing_names_bad_keys_and_builds_the_product():
  grid = sweep.parse_grid(["flat.beta=1e-4, 1e-3", "flat.gamma=0.1,1,10"])
  points = sweep.grid_points(grid)
  assert len(points) == 6 and points[0].flags() == [
    "--config.flat.beta=1e-4",
    "--config.flat.gamma=0.1",
  ]
  assert points[5].name == "beta=1e-3_gamma=10"
  with pytest.raises(sweep.SweepError, match="did you mean flat.beta"):
    sweep.parse_grid(["beta=1"])
  with pytest.raises(sweep.SweepError, match="set by the sweep"):
    sweep.parse_grid(["stage=all"])


def test_selection_by_dev_robustness_then_dev_accuracy_and_mean_over_seeds():
  rows = [
    {
      "point": "a",
      "settings": {"flat.beta": "1", "seed": "1"},
      "dev_after_attack": 20.0,
      "dev_accuracy": 80.0,
    },
    {
      "point": "b",
      "settings": {"flat.beta": "1", "seed": "2"},
      "dev_after_attack": 10.0,
      "dev_accuracy": 80.0,
    },
    {
      "point": "c",
      "settings": {"flat.beta": "2", "seed": "1"},
      "dev_after_attack": 16.0,
      "dev_accuracy": 78.0,
    },
    {
      "point": "d",
      "settings": {"flat.beta": "2", "seed": "2"},
      "dev_after_attack": 16.0,
      "dev_accuracy": 78.0,
    },
    {"point": "e", "settings": {"flat.beta": "3", "seed": "1"}, "status": "running"},
  ]
  chosen = sweep.select(rows)
  assert chosen["settings"] == {"flat.beta": "2"} and chosen["seeds"] == 2  # 16 > mean(20, 10)
  rows[2]["dev_after_attack"] = rows[3]["dev_after_attack"] = 15.0  # a tie on robustness
  assert sweep.select(rows)["settings"] == {"flat.beta": "1"}  # dev accuracy decides
  # a collapsed point (one class: 'robust' at the majority rate) is below the accuracy floor
  rows.append(
    {
      "point": "f",
      "settings": {"flat.beta": "9", "seed": "1"},
      "dev_after_attack": 49.0,
      "dev_accuracy": 51.6,
    }
  )
  assert sweep.select(rows)["settings"] == {"flat.beta": "1"}
  assert sweep.select(rows, max_accuracy_drop=40.0)["settings"] == {"flat.beta": "9"}


def test_sweep_selects_on_dev_and_resumes_after_a_kill(tmp_path, shared_data):
  reference = tmp_path / "reference"
  done = subprocess.run(_cli(reference), capture_output=True, text=True)
  assert done.returncode == 0, done.stderr[-3000:]
  summary, points = _comparable(reference)
  assert summary["complete"] and len(summary["points"]) == 2
  for results in points.values():
    assert results["status"] == "trained" and not results["after_attack"]  # the test set untouched
    assert results["dev_after_attack"]["textfooler"]["num_examples"] == 8
    assert not (reference / "beta=0.1_gamma=0.001" / "attacks" / "test_textfooler.jsonl").exists()
  best = max(summary["points"], key=lambda r: (r["dev_after_attack"], r["dev_accuracy"]))
  assert summary["chosen"]["points"] == [best["point"]]
  assert "**chosen**" in (reference / "sweep.md").read_text()

  # the second point took the first's base stage and round-1 attack: the same as computing them
  assert "beta=1.0_gamma=0.001 starts from beta=0.1_gamma=0.001's base stage" in done.stderr
  alone = tmp_path / "alone"
  point = sweep.grid_points(sweep.parse_grid(["flat.beta=1.0", "flat.gamma=0.001"]))[0]
  cmd = sweep.point_command(
    point, "configs/trec_cnn.py", alone, 8, [a for a in _cli(alone) if a.startswith("--config.")]
  )
  single = subprocess.run(cmd, capture_output=True, text=True)
  assert single.returncode == 0, single.stderr[-3000:]
  seeded = reference / "beta=1.0_gamma=0.001"
  for name in ("results.json",):
    a, b = (json.loads((d / name).read_text()) for d in (seeded, alone / point.name))
    a.pop("timings_s"), b.pop("timings_s")
    assert a == b
  strip = lambda d: [
    {k: v for k, v in json.loads(l).items() if k not in ("examples_per_s", "epoch_seconds")}
    for l in (d / "metrics.jsonl").read_text().splitlines()
  ]
  assert strip(seeded) == strip(alone / point.name)
  assert (seeded / "adversarial" / "round_1.jsonl").read_text() == (
    alone / point.name / "adversarial" / "round_1.jsonl"
  ).read_text()

  killed = tmp_path / "killed"
  proc = subprocess.Popen(
    _cli(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
  )
  first = killed / "beta=0.1_gamma=0.001" / "adversarial" / "round_1.jsonl"
  deadline = time.time() + 300
  while (
    time.time() < deadline
    and proc.poll() is None
    and not (first.exists() and len(first.read_text().splitlines()) >= 3)
  ):
    time.sleep(0.05)
  os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its point, as a machine's stop would
  proc.wait()
  assert proc.returncode == -signal.SIGKILL, "the sweep finished before it could be killed"
  resumed = subprocess.run(_cli(killed), capture_output=True, text=True)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert _comparable(killed) == _comparable(reference)


def test_a_dev_attack_from_before_calibrated_attacks_is_made_again(tmp_path):
  point = sweep.grid_points(sweep.parse_grid(["flat.beta=1"]))[0]
  folder = tmp_path / point.name
  folder.mkdir()
  results = {
    "status": "trained",
    "dev_accuracy": 80.0,
    "dev_after_attack": {"textfooler": {"accuracy": 30.0, "num_examples": 8, "success_rate": 50.0}},
  }
  (folder / "results.json").write_text(json.dumps(results))
  assert "dev_after_attack" not in sweep._summary(tmp_path, point)  # queried at T = 1: not compared
  command = sweep.point_command(point, "configs/trec_cnn.py", tmp_path, 8, [], evaluate_only=True)
  assert "--config.stage=evaluate" in command and "--config.eval.attacks=()" in command
  results["dev_after_attack"]["textfooler"]["temperature"] = 1.7
  (folder / "results.json").write_text(json.dumps(results))
  row = sweep._summary(tmp_path, point)
  assert row["dev_after_attack"] == 30.0 and row["dev_temperature"] == 1.7
  assert "| 30.00 | 80.00 | 1.7 |" in sweep.render_markdown(
    {"grid": {"flat.beta": ["1"]}, "dev_examples": 8, "points": [row], "chosen": None}
  )
