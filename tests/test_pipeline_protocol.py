"""The authors' protocol as switches, end to end on a small TREC slice: the continuous schedule
(the mode's model from scratch, rounds continue from the last epoch and attack it, the best
adversarial epoch is the model), resumed after a kill to the same results."""

import json
import subprocess
import sys

from flat_jax import config as config_lib

from test_pipeline import _kill_when


def _cli(workdir, *overrides):
  return [
    sys.executable,
    "-m",
    "flat_jax.main",
    "--config",
    "configs/trec_cnn.py",
    "--workdir",
    str(workdir),
    "--config.mode=flat",
    "--config.protocol=authors",
    "--config.stage=train",
    "--config.data.train_limit=300",
    "--config.attack.num_examples=12",
    "--config.train.epochs=2",
    *overrides,
  ]


def _metrics(workdir):
  lines = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  for m in lines:
    m.pop("examples_per_s"), m.pop("epoch_seconds")
  return lines


def test_protocol_sets_each_switch_the_run_left_at_its_default():
  c = config_lib.preset("sst2", "cnn")
  c.protocol = "authors"
  c.attack.grow_vocab = True  # left at our default: the protocol turns it off
  c.attack.keep = "perturbed"  # set away from our default: the run's value stays
  changed = config_lib.resolve_protocol(c)
  assert c.train.continuous and c.train.loss_on_probs and c.attack.model_mode == "training"
  assert c.flat.entropy_reduction == "padded_mean" and c.flat.importance_positions == "aligned"
  assert not c.attack.grow_vocab and c.rounds == 2
  assert c.attack.keep == "perturbed" and "attack.keep" not in changed
  ours = config_lib.preset("sst2", "cnn")
  assert config_lib.resolve_protocol(ours) == [] and not ours.train.continuous


def test_continuous_schedule_attacks_the_last_epoch_and_keeps_the_best_adversarial_epoch(
  tmp_path, shared_data
):
  reference = tmp_path / "reference"
  done = subprocess.run(_cli(reference), capture_output=True, text=True)
  assert done.returncode == 0, done.stderr[-3000:]
  results = json.loads((reference / "results.json").read_text())
  assert (
    results["status"] == "trained"
    and results["rounds_done"] == 2
    and "dev_after_attack" not in results
  )
  assert [r["attacked_model"] for r in results["rounds"]] == [
    "train_flat_round_0/latest",
    "train_flat_round_1/latest",
  ]
  # keep=all: every attacked example becomes a twin, skipped and failed ones too
  assert all(r["kept"] == 12 for r in results["rounds"])
  assert sorted(p.name for p in (reference / "checkpoints").iterdir()) == [
    "train_flat_round_0",
    "train_flat_round_1",
    "train_flat_round_2",
  ]  # no mask-free base
  metrics = _metrics(reference)
  # one run: the step count goes on across stages (the optimiser state is carried over)
  assert [m["step"] for m in metrics] == sorted(m["step"] for m in metrics)
  assert metrics[2]["step"] > metrics[1]["step"] > metrics[0]["step"]
  # the model: the best dev epoch of the adversarial rounds (the first best on a tie)
  rounds = {r["round"]: r["dev_accuracy"] for r in results["rounds"]}
  best_round = max(sorted(rounds), key=lambda k: (rounds[k], -k))
  assert results["model_stage"] == f"train_flat_round_{best_round}"
  assert results["dev_accuracy"] == max(rounds.values())
  assert results["protocol"]["continuous"] and results["flat"]["entropy_reduction"] == "padded_mean"

  # robustness on dev for a finished run (selection among runs): the same dev sample for every run
  dev = subprocess.run(
    _cli(
      reference,
      "--config.stage=evaluate",
      "--config.eval.dev_examples=6",
      "--config.eval.attacks=()",
    ),
    capture_output=True,
    text=True,
  )
  assert dev.returncode == 0, dev.stderr[-3000:]
  evaluated = json.loads((reference / "results.json").read_text())
  assert evaluated["dev_after_attack"]["textfooler"]["num_examples"] == 6
  assert not (reference / "attacks" / "test_textfooler.jsonl").exists()
  from flat_jax.run_evaluation import dev_sample

  records = [json.loads(l) for l in (reference / "attacks" / "dev_textfooler.jsonl").open()]
  assert [r["index"] for r in records] == dev_sample(452, 6)

  killed = tmp_path / "killed"
  _kill_when(
    _cli(killed),
    lambda: (killed / "checkpoints" / "train_flat_round_1" / "latest" / "1").exists(),
    "during round-1 training",
  )
  resumed = subprocess.run(_cli(killed), capture_output=True, text=True)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert _metrics(killed) == metrics
  again = json.loads((killed / "results.json").read_text())
  again["timings_s"], results["timings_s"] = (
    sorted(again["timings_s"]),
    sorted(results["timings_s"]),
  )
  assert again == results
  assert (killed / "adversarial" / "round_2.jsonl").read_text() == (
    reference / "adversarial" / "round_2.jsonl"
  ).read_text()


def test_continuous_with_a_linear_schedule_is_refused_and_a_bare_bool_flag_parses():
  """The carried optimiser state holds the schedule's count: the rounds would train at rate 0."""
  import pytest
  from flat_jax import pipeline, sweep

  c = config_lib.preset("sst2", "bert")
  c.mode, c.train.continuous = "flat", True
  with pytest.raises(pipeline.RunError, match="learning rate 0"):
    pipeline._check_supported(c)
  grid = sweep.parse_grid(["flat.beta=0.1,1"])
  assert not sweep.shares_base(grid, ["--config.train.continuous"])
  assert sweep.shares_base(grid, ["--config.train.continuous=False"])
