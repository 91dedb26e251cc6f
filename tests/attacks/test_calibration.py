"""The evaluation attacks' temperature: the fit recovers a known temperature; a model whose logits
are scaled up (same predictions, saturated float32 probabilities) looks robust to TextFooler at
T = 1 and does not at its calibrated temperature; records made at another temperature are redone."""

import dataclasses
import random

import numpy as np
import pytest

from flat_jax import pipeline, run_evaluation
from flat_jax.attacks import calibration, resources
from flat_jax.attacks.bridge import PredictionBridge, textattack_wrapper
from flat_jax.attacks.generate import AttackJob, attack_examples, read_records
from flat_jax.attacks.recipes import build_attack
from flat_jax.config import preset
from flat_jax.training.artifacts import load_trained

SCALE = 300.0  # logit margins of about 1 become about 300: SST-2 CNN's authors-protocol regime


def test_fit_recovers_the_temperature_labels_were_drawn_at():
  rng = np.random.RandomState(0)
  logits = rng.normal(0, 3, size=(20000, 3))
  for true_t in (0.5, 1.0, 7.0):
    p = np.exp(logits / true_t)
    p /= p.sum(1, keepdims=True)
    labels = np.array([rng.choice(3, p=row) for row in p])
    fitted = calibration.fit_temperature(logits, labels)
    assert abs(fitted - true_t) / true_t < 0.05, (true_t, fitted)
    assert calibration.nll(logits, labels, fitted) <= calibration.nll(logits, labels, 1.0)
  with pytest.raises(ValueError):
    calibration.fit_temperature(logits[:3], labels[:2])


@pytest.fixture(scope="module")
def splits(sst2_splits):
  return sst2_splits


def _scaled(trained, scale):
  params = dict(trained.params)
  params["head"] = {k: np.asarray(v) * scale for k, v in params["head"].items()}
  return dataclasses.replace(trained, params=params)


def _after_attack(trained, temperature, texts, labels):
  resources.prepare_textattack_environment()
  attack = build_attack(
    "textfooler",
    textattack_wrapper(PredictionBridge.from_trained(trained, temperature=temperature)),
  )
  failed = 0
  for i, (text, label) in enumerate(zip(texts, labels)):
    random.seed(i)
    result = attack.attack(text, int(label))
    failed += type(result).__name__ == "FailedAttackResult"
  return failed


def test_saturated_model_is_robust_only_at_temperature_one(model_dir, splits):
  trained = load_trained(model_dir)
  saturated = _scaled(trained, SCALE)
  dev = splits.dev
  probs = PredictionBridge.from_trained(saturated)(dev.texts[:200])
  assert np.mean(probs.max(1) == 1.0) > 0.5  # float32 saturation: what blinds the search
  plain = calibration.calibrate(trained, dev.texts, dev.labels)
  fit = calibration.calibrate(saturated, dev.texts, dev.labels)
  assert plain["saturated"] < 0.05 < 0.5 < fit["saturated"]
  assert fit["value"] == pytest.approx(SCALE * plain["value"], rel=0.02)
  assert fit["nll"] == pytest.approx(plain["nll"], abs=1e-3) and fit["nll_at_1"] > 3 * fit["nll"]
  # same predictions, yet TextFooler fails on more examples at T = 1; at the calibrated temperature
  # the scaled model is exactly as robust as the original
  texts, labels = splits.test.texts[:30], splits.test.labels[:30]
  at_one = _after_attack(saturated, 1.0, texts, labels)
  calibrated = _after_attack(saturated, fit["value"], texts, labels)
  original = _after_attack(trained, plain["value"], texts, labels)
  assert at_one > calibrated + 2, (at_one, calibrated)
  assert abs(calibrated - original) <= 1, (calibrated, original)


def test_records_made_at_another_temperature_are_redone(model_dir, splits, tmp_path):
  out = tmp_path / "pwws.jsonl"
  texts, labels = splits.test.texts, splits.test.labels
  first = attack_examples(AttackJob(str(model_dir), "pwws"), texts, labels, out, indices=range(4))
  assert {r["temperature"] for r in first} == {1.0}
  lines = out.read_text().splitlines()
  # a record file from before temperatures were recorded reads as T = 1
  out.write_text("".join(line.replace(', "temperature": 1.0', "") + "\n" for line in lines))
  again = attack_examples(AttackJob(str(model_dir), "pwws"), texts, labels, out, indices=range(4))
  assert [r["status"] for r in again] == [r["status"] for r in first]
  hotter = attack_examples(
    AttackJob(str(model_dir), "pwws", temperature=2.0), texts, labels, out, indices=range(4)
  )
  assert {r["temperature"] for r in hotter} == {2.0}
  assert {r["temperature"] for r in read_records(out).values()} == {2.0}
  assert len(out.read_text().splitlines()) == 4


def test_interpretation_is_redone_for_pairs_made_at_another_temperature(
  model_dir, splits, tmp_path
):
  config = preset("sst2", "cnn")
  config.eval.interpret = ("ig",)
  config.eval.ig_steps = 4
  texts, labels = splits.test.texts, splits.test.labels
  stage = pipeline.read_results(model_dir)["model_stage"]
  results = {
    "timings_s": {},
    "interpretation": {"ig": {"pwws": {"kendall_tau": 9.0}}},
  }  # made at T = 1
  records = attack_examples(
    AttackJob(str(model_dir), "pwws", temperature=2.0),
    texts,
    labels,
    tmp_path / "pwws.jsonl",
    indices=range(6),
  )
  out = tmp_path / "workdir"
  out.mkdir()
  (out / "results.json").write_text("{}")
  for name in ("config.json", "vocab.json", "checkpoints"):
    (out / name).symlink_to(model_dir / name)
  key = run_evaluation.records_key(records, 2.0, "")
  run_evaluation.interpret(config, out, results, "pwws", records, stage, key)
  redone = results["interpretation"]["ig"]["pwws"]
  assert redone["temperature"] == 2.0 and redone["kendall_tau"] != 9.0 and redone["num_pairs"] > 0
  redone["kendall_tau"] = 8.0  # kept when the pairs' temperature matches
  run_evaluation.interpret(config, out, results, "pwws", records, stage, key)
  assert results["interpretation"]["ig"]["pwws"]["kendall_tau"] == 8.0
  # and redone when the records are others (more of them, or under another attack budget)
  run_evaluation.interpret(
    config, out, results, "pwws", records, stage, run_evaluation.records_key(records[:4], 2.0, "")
  )
  assert results["interpretation"]["ig"]["pwws"]["kendall_tau"] != 8.0
  results["interpretation"]["ig"]["pwws"]["kendall_tau"] = 7.0
  run_evaluation.interpret(
    config,
    out,
    results,
    "pwws",
    records[:4],
    stage,
    run_evaluation.records_key(records[:4], 2.0, "textdefender"),
  )
  assert results["interpretation"]["ig"]["pwws"]["kendall_tau"] != 7.0
