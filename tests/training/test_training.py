"""End to end on a few hundred real SST-2 rows: the CLI path trains, beats chance, is deterministic."""

import json
import subprocess
import sys

import pytest

from flat_jax import pipeline
from flat_jax.config import preset


def _small_config(model="cnn", **train):
  c = preset("sst2", model)
  c.data.train_limit = 800
  c.data.test_limit = 400
  c.train.epochs = 4
  c.stage = "train"  # no after-attack evaluation here (tests/test_pipeline.py covers it)
  for k, v in train.items():
    c.train[k] = v
  return c


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory, shared_data):
  workdir = tmp_path_factory.mktemp("cnn")
  return workdir, pipeline.run(_small_config(), workdir)


def test_training_beats_chance_and_writes_contract(cnn_run):
  workdir, results = cnn_run
  assert results["standard_accuracy"] > 62.0, results  # balanced binary test set: chance is 50
  assert results["dev_accuracy"] > 62.0
  on_disk = json.loads((workdir / "results.json").read_text())
  for key in ("dataset", "model", "mode", "dev_accuracy", "standard_accuracy", "timings_s"):
    assert key in on_disk
  assert (
    on_disk["status"] == "trained" and on_disk["dataset"] == "sst2" and on_disk["mode"] == "base"
  )
  lines = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [l["epoch"] for l in lines] == [1, 2, 3, 4]
  assert lines[-1]["train_loss"] < lines[0]["train_loss"]


def test_same_seed_same_metrics(cnn_run, tmp_path):
  workdir, results = cnn_run
  again = pipeline.run(_small_config(), tmp_path)
  assert again["standard_accuracy"] == results["standard_accuracy"]
  first = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  second = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [l["train_loss"] for l in first] == [l["train_loss"] for l in second]
  assert [l["dev_accuracy"] for l in first] == [l["dev_accuracy"] for l in second]


def test_lstm_trains_on_a_small_slice(tmp_path, shared_data):
  results = pipeline.run(_small_config("lstm", learning_rate=0.005), tmp_path)
  assert results["standard_accuracy"] > 60.0, results


def test_finished_run_same_config_is_a_no_op_other_config_refused(cnn_run):
  workdir, results = cnn_run
  mtime = (workdir / "results.json").stat().st_mtime_ns
  assert pipeline.run(_small_config(), workdir) == results
  assert (workdir / "results.json").stat().st_mtime_ns == mtime
  with pytest.raises(pipeline.RunError, match="finished run"):
    pipeline.run(_small_config(learning_rate=0.5), workdir)
  cli = subprocess.run(
    [
      sys.executable,
      "-m",
      "flat_jax.main",
      "--config",
      "configs/sst2_cnn.py",
      "--workdir",
      str(workdir),
      "--config.stage=train",
    ],
    capture_output=True,
    text=True,
  )
  assert cli.returncode == 2 and "--config.overwrite=True" in cli.stderr
  assert json.loads((workdir / "results.json").read_text()) == results


def test_select_epoch_chooses_between_the_best_dev_epoch_and_the_last(tmp_path, shared_data):
  """Train labels flipped against dev's (and test = dev): the more the model fits, the worse dev
  gets, so the best-dev epoch and the last one are different models."""
  from flat_jax.data.datasets import load_dataset

  sst2 = load_dataset(preset("sst2", "cnn").data).train
  data = tmp_path / "data"
  data.mkdir()
  rows = list(zip(sst2.texts[:400], sst2.labels[:400].tolist()))
  with open(data / "train.jsonl", "w") as f:
    f.writelines(json.dumps({"text": t, "label": 1 - y}) + "\n" for t, y in rows)
  for split in ("dev", "test"):
    with open(data / f"{split}.jsonl", "w") as f:
      f.writelines(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows)
  outcome = {}
  for select in ("best_dev", "last"):
    c = _small_config(select_epoch=select)
    c.data.name, c.data.path, c.data.label_names = "custom", str(data), ("0", "1")
    c.data.train_limit = c.data.test_limit = 0
    c.train.epochs = 3
    results = pipeline.run(c, tmp_path / select)
    dev = [
      json.loads(l)["dev_accuracy"]
      for l in (tmp_path / select / "metrics.jsonl").read_text().splitlines()
    ]
    outcome[select] = (results, dev)
  (best, dev), (last, dev_again) = outcome["best_dev"], outcome["last"]
  assert dev == dev_again and dev[-1] < max(dev)  # the same training, dev falling
  assert best["best_epoch"] == dev.index(max(dev)) + 1 and last["best_epoch"] == 3
  assert best["standard_accuracy"] == pytest.approx(max(dev))  # test = dev: the chosen epoch's
  assert last["standard_accuracy"] == pytest.approx(dev[-1])
