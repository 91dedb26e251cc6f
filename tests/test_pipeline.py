"""End to end: base -> adversarial rounds -> evaluation, killed twice and resumed."""

import json
import signal
import subprocess
import sys
import time

import pytest


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
    "--config.rounds=2",
    "--config.data.train_limit=300",
    "--config.attack.num_examples=16",
    "--config.train.epochs=3",
    "--config.eval.num_examples=8",
    *overrides,
  ]


def _comparable(workdir):
  results = json.loads((workdir / "results.json").read_text())
  results["timings_s"] = sorted(results["timings_s"])  # the stages timed, not the seconds
  metrics = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  for m in metrics:
    m.pop("examples_per_s"), m.pop("epoch_seconds")
  adversarial = {p.name: p.read_text() for p in sorted((workdir / "adversarial").glob("*.jsonl"))}
  return results, metrics, adversarial


def _kill_when(cmd, ready, what):
  proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while not ready() and time.time() < deadline and proc.poll() is None:
    time.sleep(0.02)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert proc.returncode == -signal.SIGKILL, f"the run finished before it could be killed {what}"


def _lines(path):
  return len(path.read_text().splitlines()) if path.exists() else 0


def test_rounds_killed_during_attack_and_training_resume_to_the_same_results(tmp_path, shared_data):
  reference = tmp_path / "reference"
  done = subprocess.run(_cli(reference), capture_output=True, text=True)
  assert done.returncode == 0, done.stderr[-3000:]
  results = json.loads((reference / "results.json").read_text())
  assert results["status"] == "finished" and results["rounds_done"] == 2
  assert [r["attacked_model"] for r in results["rounds"]] == ["train_base", "train_flat_round_1"]
  assert all(r["attack"]["num_examples"] == 16 for r in results["rounds"])
  assert results["model_stage"] == "train_flat_round_2"
  assert set(results["after_attack"]["textfooler"]) >= {
    "accuracy",
    "success_rate",
    "num_examples",
    "avg_queries",
    "avg_perturbed_fraction",
  }
  assert results["after_attack"]["textfooler"]["num_examples"] == 8
  # the evaluation attack queried the model at the temperature fitted on dev, recorded with it
  temperature = results["attack_temperature"]
  assert (
    temperature["source"] == "calibrated on dev" and temperature["stage"] == results["model_stage"]
  )
  assert temperature["value"] > 0 and temperature["nll"] <= temperature["nll_at_1"]
  assert results["after_attack"]["textfooler"]["temperature"] == temperature["value"]
  test_records = [json.loads(l) for l in (reference / "attacks" / "test_textfooler.jsonl").open()]
  assert {r["temperature"] for r in test_records} == {temperature["value"]}
  pairs = [r for r in test_records if r["status"] != "skipped" and r["perturbed"] != r["original"]]
  assert results["interpretation"]["ig"]["textfooler"]["num_pairs"] == len(pairs)
  assert (reference / "report" / "tables.md").read_text().count("CNN-FLAT") >= 2
  page = (reference / "report" / "index.html").read_text()
  # training curves, figures 4, 5, 6 (IG), IG's faithfulness curves, quality histograms
  assert page.count("data:image/png;base64,") == 6  # + the TextFooler examples' quality
  quality = results["attack_quality"]["textfooler"]
  successful = [r for r in test_records if r["status"] == "successful" and r["replaced"]]
  assert (
    quality["num_examples"] == len(successful) and quality["temperature"] == temperature["value"]
  )
  faithful = results["faithfulness"]["ig"]
  assert (
    faithful["requested"] == 8 and faithful["stage"] == results["model_stage"]
  )  # the attacked texts
  assert faithful["temperature"] == temperature["value"]
  assert faithful["aopc_comprehensiveness"] > faithful["aopc_comprehensiveness_random"]
  tables = (reference / "report" / "tables.md").read_text()
  assert "Quality of the adversarial examples" in tables and "Faithfulness: AOPC" in tables
  first_pair = pairs[0]["original"].split()[0]
  assert first_pair in page and 'class="w sub"' in page  # IG-coloured pairs, replaced words framed
  assert {"pearson", "synonym_l1"} <= set(
    json.loads((reference / "results.json").read_text())["importance"]
  )
  assert {
    "train_base",
    "attack_round_1",
    "train_flat_round_1",
    "attack_round_2",
    "train_flat_round_2",
    "attack_test_textfooler",
  } <= set(results["timings_s"])

  killed = tmp_path / "killed"
  _kill_when(
    _cli(killed),
    lambda: _lines(killed / "adversarial" / "round_1.jsonl") >= 5,
    "during the round-1 attack",
  )
  assert json.loads((killed / "results.json").read_text())["status"] == "running"
  _kill_when(
    _cli(killed),
    lambda: (killed / "checkpoints" / "train_flat_round_1" / "latest" / "2").exists(),
    "during round-1 training",
  )
  resumed = subprocess.run(_cli(killed), capture_output=True, text=True)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "resuming after epoch 2" in resumed.stderr
  assert _comparable(killed) == _comparable(reference)


def test_a_run_saved_before_a_setting_existed_resumes_and_a_changed_one_is_refused(tmp_path):
  from flat_jax import pipeline
  from flat_jax.config import preset

  config = preset("trec", "cnn")
  workdir = tmp_path / "run"
  pipeline.prepare_workdir(config, workdir)
  (workdir / "checkpoints").mkdir()  # an unfinished run
  saved = json.loads((workdir / "config.json").read_text())
  del saved["eval"]["ig_steps"]  # as written by an older flat_jax
  (workdir / "config.json").write_text(json.dumps(saved))
  assert pipeline.prepare_workdir(config, workdir) == (workdir, None)
  assert "ig_steps" in json.loads((workdir / "config.json").read_text())["eval"]

  saved["train"]["epochs"] += 1  # still without ig_steps
  (workdir / "config.json").write_text(json.dumps(saved))
  with pytest.raises(pipeline.RunError, match="different config"):
    pipeline.prepare_workdir(config, workdir)
