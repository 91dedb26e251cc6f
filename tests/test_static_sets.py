"""Fixed adversarial test sets (eval.static_sets): both layouts, scored by plain accuracy through
the stage=evaluate path, in results.json and the report's tables."""

import json
import shutil

import numpy as np
import pytest

from flat_jax import pipeline
from flat_jax.attacks.bridge import PredictionBridge
from flat_jax.config import preset
from flat_jax.data.datasets import DataError
from flat_jax.data.static_sets import load_static_set
from flat_jax.report import tables
from flat_jax.training.artifacts import load_trained

NAMES = ("negative", "positive")


def test_both_layouts_and_their_errors(tmp_path):
  lines = tmp_path / "mine.jsonl"
  lines.write_text(
    '{"text": "a dull , lifeless film", "label": 0}\n\n{"text": "a joy", "label": "positive"}\n'
  )
  assert load_static_set(lines, "sst2", NAMES) == (["a dull , lifeless film", "a joy"], [0, 1])
  advglue = tmp_path / "dev.json"
  advglue.write_text(
    json.dumps(
      {
        "sst2": [{"idx": 0, "sentence": "it 's a charming journey", "label": 1}],
        "qqp": [{"idx": 0, "question1": "?", "question2": "?", "label": 0}],
      }
    )
  )
  assert load_static_set(advglue, "sst2", NAMES) == (["it 's a charming journey"], [1])
  with pytest.raises(
    DataError, match=r"dev.json: no 'trec' task \(AdvGLUE layout; it has qqp, sst2\)"
  ):
    load_static_set(advglue, "trec", ("DESC",))
  lines.write_text('{"text": "fine", "label": 0}\n{"text": "bad", "label": 2}\n')
  with pytest.raises(DataError, match=r"mine.jsonl:2: label 2 out of range 0..1"):
    load_static_set(lines, "sst2", NAMES)
  lines.write_text('{"text": "fine", "label": 0}\n{"text": "cut sh')
  with pytest.raises(DataError, match=r"mine.jsonl:2: not JSON"):
    load_static_set(lines, "sst2", NAMES)
  with pytest.raises(DataError, match="no such file"):
    load_static_set(tmp_path / "none.jsonl", "sst2", NAMES)


def test_evaluate_scores_each_set_with_the_model(model_dir, sst2_splits, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(model_dir, workdir)
  texts, labels = sst2_splits.test.texts[:30], sst2_splits.test.labels[:30].tolist()
  flipped = tmp_path / "flipped.jsonl"  # the same texts with the other label
  flipped.write_text(
    "".join(json.dumps({"text": t, "label": 1 - y}) + "\n" for t, y in zip(texts, labels))
  )
  advglue = tmp_path / "dev.json"
  advglue.write_text(
    json.dumps(
      {
        "sst2": [
          {"idx": i, "sentence": t, "label": y} for i, (t, y) in enumerate(zip(texts, labels))
        ]
      }
    )
  )
  c = preset("sst2", "cnn")
  c.data.train_limit, c.data.test_limit, c.train.epochs = 1500, 40, 3
  c.stage, c.eval.attacks = "evaluate", ()
  c.eval.static_sets = (str(flipped), str(advglue))
  results = pipeline.run(c, workdir)
  predicted = PredictionBridge.from_trained(load_trained(workdir))(texts).argmax(-1)
  right = 100.0 * np.mean(predicted == np.asarray(labels))
  assert results["static_sets"]["dev"]["accuracy"] == pytest.approx(right)
  assert results["static_sets"]["flipped"]["accuracy"] == pytest.approx(100.0 - right)  # binary
  assert results["static_sets"]["dev"]["num_examples"] == 30
  assert json.loads((workdir / "results.json").read_text())["static_sets"] == results["static_sets"]
  table = tables.render(tables.load_runs([workdir]))
  assert f"| SST2 CNN-base | {right:.2f} (30) | {100 - right:.2f} (30) |" in table
