"""The README's Python API example, run as written there, and what it promises."""

import json
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import flat_jax
from flat_jax.config import ConfigError
from flat_jax.data.datasets import load_dataset

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _example() -> str:
  section = README.read_text().split("## Python API", 1)[1]
  return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_runs_and_the_model_answers_as_the_run_does(tmp_path, shared_data):
  done = subprocess.run(
    [sys.executable, "-c", _example()], cwd=tmp_path, capture_output=True, text=True
  )
  assert done.returncode == 0, done.stderr[-3000:]
  workdir = tmp_path / "runs" / "api_example"
  results = json.loads((workdir / "results.json").read_text())
  assert (
    results["status"] == "finished" and results["mode"] == "flat" and results["rounds_done"] == 1
  )
  out = done.stdout.splitlines()
  assert (
    out[0] == f"{results['standard_accuracy']} {results['after_attack']['textfooler']['accuracy']}"
  )
  assert out[1].split()[0] in ("DESC", "ENTY", "ABBR", "HUM", "LOC", "NUM")
  assert len(out) == 6 and re.match(r"(successful|failed|skipped) \| what is the capital", out[4])

  model = flat_jax.load(workdir)
  assert model.stage == "train_flat_round_1" and model.label_names[4] == "LOC"
  texts = ["what is the capital of peru ?", "who wrote hamlet ?", "how many feet are in a mile ?"]
  predictions = model.predict(texts)
  probs = model.probabilities(texts)
  assert [p["label"] for p in predictions] == probs.argmax(1).tolist()
  assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-5 for p in predictions)
  # the run's own test accuracy, recomputed through the API on the run's test split
  test = load_dataset(model.config.data).test
  got = (model.probabilities(list(test.texts)).argmax(1) == np.asarray(test.labels)).mean()
  assert abs(100 * got - results["standard_accuracy"]) < 0.01
  explained = model.explain(texts[1])
  assert [w for w, _ in explained] == ["who", "wrote", "hamlet", "?"]
  assert all(np.isfinite(a) for _, a in explained) and any(a != 0 for _, a in explained)
  other = model.explain(texts[1], label="LOC")
  assert [a for _, a in other] != [a for _, a in explained]
  records = model.attack(
    texts[:2], [4, "HUM"], recipe="pwws", temperature=1.0, out=tmp_path / "r.jsonl"
  )
  assert [r["original"] for r in records] == texts[:2] and {r["temperature"] for r in records} == {
    1.0
  }
  assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 2
  with pytest.raises(ValueError, match="2 texts but 1 labels"):
    model.attack(texts[:2], [4])
  with pytest.raises(TypeError, match="list of texts"):
    model.predict("who wrote hamlet ?")


def test_config_applies_dotted_overrides_and_refuses_unknown_keys():
  c = flat_jax.get_config(
    "sst2_cnn", **{"flat.beta": 1.0, "eval.attacks": ["pwws"], "mode": "flat"}
  )
  assert c.flat.beta == 1.0 and c.eval.attacks == ("pwws",) and c.mode == "flat"
  with pytest.raises(ConfigError, match="unknown config key 'flat.bta'"):
    flat_jax.get_config("sst2_cnn", **{"flat.bta": 1.0})
  assert flat_jax.__version__ and set(flat_jax.__all__) >= {"train", "load", "get_config", "Model"}
