"""PNG plots of Figures 4-6 and the self-contained HTML page of a run."""

import base64
import json
import re

import numpy as np
import pytest
from PIL import Image

from flat_jax.data.text import clean_text, tokenize
from flat_jax.interpret import importance
from flat_jax.report import html, plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _analysis():
  vocab = ["<pad>", "<unk>", "a", "b", "c", "e"]
  space = (["a", "b", "c", "e"], np.array([[1, 0.1], [1, -0.1], [0, 1], [0.1, 1]], np.float32))
  records = [{"status": "successful", "replaced": [[0, "a", "b"], [1, "c", "e"]]}]
  return importance.analyze(
    [0.9, 0.7, 0.1, 0.2], vocab, ["a b c e", "a a c"], records, synonym_space=space, num_synonyms=1
  )


def _results(mode, topk):
  return {
    "dataset": "trec",
    "model": "cnn",
    "mode": mode,
    "status": "finished",
    "rounds_done": 3 if mode == "flat" else 0,
    "standard_accuracy": 88.4,
    "attack": {"recipe": "textfooler"},
    "flat": {"beta": 0.1, "gamma": 0.001},
    "after_attack": {"textfooler": {"accuracy": 54.8, "num_examples": 2}},
    "interpretation": {
      "ig": {
        "textfooler": {
          "kendall_tau": 0.5,
          "topk_intersection": {str(k): topk * k / 10 for k in range(1, 11)},
        }
      }
    },
  }


def _assert_png(path):
  assert path.exists() and path.read_bytes()[:8] == PNG_MAGIC
  with Image.open(path) as image:
    image.verify()
  with Image.open(path) as image:
    assert image.size[0] > 200 and image.size[1] > 200


def test_plots_are_written_as_valid_pngs(tmp_path):
  runs = {"CNN-base": _results("base", 0.8), "CNN-FLAT": _results("flat", 0.9)}
  paths = plots.write_run_plots(tmp_path / "report", analysis=_analysis(), runs=runs)
  assert [p.name for p in paths] == ["figure4.png", "figure5.png", "figure6_ig.png"]
  for path in paths:
    _assert_png(path)
  assert plots.write_run_plots(tmp_path / "none", runs={"CNN-base": {"mode": "base"}}) == []
  with pytest.raises(ValueError, match="no run has lime"):
    plots.figure6(runs, tmp_path / "x.png", method="lime")
  with pytest.raises(ValueError, match="non-empty"):
    plots.figure5({"FLAT": []}, tmp_path / "y.png")


def _workdir(tmp_path):
  run = tmp_path / "run"
  (run / "attacks").mkdir(parents=True)
  (run / "results.json").write_text(json.dumps(_results("flat", 0.9)))
  (run / "config.json").write_text(
    json.dumps(
      {"attack": {"recipe": "textfooler"}, "flat": {"beta": 0.1, "gamma": 0.001}, "data": {}}
    )
  )
  records = [
    {
      "index": 0,
      "label": 3,
      "status": "successful",
      "original": "who's the <best> actor ?",
      "perturbed": "who's the <finest> actor ?",
      "original_output": 3,
      "perturbed_output": 1,
      "replaced": [[3, "best", "finest"]],
    },
    {
      "index": 1,
      "label": 0,
      "status": "failed",
      "original": "what is x ?",
      "perturbed": "what is x ?",
      "original_output": 0,
      "perturbed_output": 0,
      "replaced": [],
    },
  ]
  (run / "attacks" / "test_textfooler.jsonl").write_text("\n".join(map(json.dumps, records)) + "\n")
  return run


def _attribute(texts):
  """Six TREC classes; for every class 'best' and 'finest' weigh +2, 'actor' -1, the rest 0.5; the
  last word ('?') left out, as a model that reads only the first words."""
  weights = {"best": 2.0, "finest": 2.0, "actor": -1.0}
  return [
    np.tile([weights.get(w, 0.5) for w in tokenize(clean_text(t))[:-1]], (6, 1)) for t in texts
  ]


def test_page_shows_coloured_escaped_pairs_and_embeds_everything(tmp_path):
  run = _workdir(tmp_path)
  images = plots.write_run_plots(
    run / "report", analysis=_analysis(), runs={"CNN-FLAT": _results("flat", 0.9)}
  )
  page = html.write_page(run, attribute=_attribute, images=images, importance=_analysis().summary)
  assert page == run / "report" / "index.html"
  text = page.read_text(encoding="utf-8")
  # cleaned "who 's the best actor ?": the quote escaped; cleaning dropped the brackets of <best>
  assert "&#x27;s</span>" in text and "<best>" not in text and "<finest>" not in text
  assert re.search(
    r'<span class="w sub" style="background-color: rgba\(214, 39, 40, 1\.00\)[^"]*" '
    r'title="\+2\.0000">finest</span>',
    text,
  )
  assert re.search(
    r'<span class="w" style="background-color: rgba\(31, 119, 180, 0\.50\)" '
    r'title="-1\.0000">actor</span>',
    text,
  )
  assert (
    '<span class="pred">[HUM]</span>' in text and '<span class="pred flip">[ENTY]</span>' in text
  )
  assert '<span class="w" title="not read by the model">?</span>' in text
  assert "what is x" not in text  # unchanged text: not a pair
  assert text.count('src="data:image/png;base64,') == len(images) == 3
  for data in re.findall(r'src="data:image/png;base64,([^"]+)"', text):
    assert base64.b64decode(data)[:8] == PNG_MAGIC
  # one file: nothing fetched from elsewhere (the search and sort script is inline)
  assert not re.search(r"<link|<script src|https?://|src=\"(?!data:)|url\(", text)
  assert text.count("<script>") == 1
  assert "<td>CNN-FLAT (Textfooler)</td>" in text  # Table 2 as an HTML table
  assert "Table 4" not in text  # no SST-2 run: empty table left out
  assert "global importance vs word frequency" in text


def test_page_checks_the_attribution_function(tmp_path):
  run = _workdir(tmp_path)
  with pytest.raises(ValueError, match="attribute returned 1 results for 2 texts"):
    html.write_page(run, attribute=lambda texts: _attribute(texts[:1]), out=tmp_path / "x.html")
  page = html.write_page(run, out=tmp_path / "plain.html")
  assert "pairs not shown" in page.read_text()


def test_markdown_conversion_of_a_table():
  converted = html.markdown_to_html(
    "Title **bold** <x>\n\n| A | B |\n|---|---|\n| 1 & 2 | 3 |\n\n- item"
  )
  assert "<p>Title <strong>bold</strong> &lt;x&gt;</p>" in converted
  assert "<table><tr><th>A</th><th>B</th></tr>\n<tr><td>1 &amp; 2</td><td>3</td></tr>" in converted
  assert "<ul><li>item</li></ul>" in converted


def test_every_pair_is_shown_with_filters_and_the_phi_and_round_tables(tmp_path):
  run = _workdir(tmp_path)
  records = [
    {
      "index": i,
      "label": i % 2,
      "status": "successful" if i % 3 else "failed",
      "original": f"who is the best actor number {i} ?",
      "perturbed": f"who is the finest actor number {i} ?",
      "original_output": i % 2,
      "perturbed_output": (i + (i % 3 > 0)) % 2,
      "replaced": [[3, "best", "finest"]],
    }
    for i in range(30)
  ]
  (run / "attacks" / "test_textfooler.jsonl").write_text("\n".join(map(json.dumps, records)) + "\n")
  results = json.loads((run / "results.json").read_text())
  results["rounds"] = [
    {
      "attacked_model": "train_base",
      "attack": {"recipe": "textfooler", "num_examples": 100, "success_rate": 81.5},
      "kept": 80,
      "vocab_added": 12,
      "dev_accuracy": 77.3,
      "best_epoch": 2,
    }
  ]
  (run / "results.json").write_text(json.dumps(results))
  analysis = _analysis()
  text = html.write_page(run, attribute=_attribute, analysis=analysis).read_text()
  pairs = re.findall(
    r'<tr data-n="(\d+)" data-status="(\w+)" data-label="(\w+)" data-flipped="(\d)"', text
  )
  assert (
    len(pairs) == 30 and pairs[0] == ("1", "failed", "DESC", "0") and pairs[1][3] == "1"
  )  # > 20 shown
  assert "30 of 30 shown" in text and 'data-filter="flipped"' in text
  assert (
    '<option value="failed">failed</option><option value="successful">successful</option>' in text
  )
  phi_rows = re.findall(
    r'<tr><td>(\w+)</td><td data-v="[0-9.]+">([0-9.]+)</td><td>(\d+)</td><td>(\d+)</td></tr>', text
  )
  assert [w for w, *_ in phi_rows] == list(
    np.array(analysis.words)[np.argsort(-analysis.phi, kind="stable")]
  )
  assert ("a", "0.900", "3", "1") in phi_rows  # 'a': phi .9, three times in training, once replaced
  assert (
    "<td>1</td><td>train_base</td><td>textfooler</td><td>100</td><td>81.5</td><td>80</td><td>12</td>"
    in text
  )


def test_chance_line_and_training_curves():
  from flat_jax.interpret.consistency import topk_chance

  chance = topk_chance([1, 10], ks=(1, 5, 10))
  assert chance == {"1": pytest.approx((1 + 0.1) / 2), "5": pytest.approx((1 + 0.5) / 2), "10": 1.0}
  assert topk_chance([]) == {}


def test_training_curves_plot_every_stage_on_one_axis(tmp_path):
  metrics = [
    {
      "stage": "train_base",
      "epoch": e,
      "step": 10 * e,
      "train_loss": 1.0 / e,
      "dev_accuracy": 50 + e,
    }
    for e in (1, 2)
  ] + [
    {"stage": "train_flat_round_1", "epoch": 1, "step": 8, "train_loss": 0.4, "dev_accuracy": 55.0}
  ]
  _assert_png(plots.training_curves(metrics, tmp_path / "curves.png"))
  runs = {"CNN-FLAT": _results("flat", 0.9)}
  paths = plots.write_run_plots(
    tmp_path / "r",
    runs=runs,
    metrics=metrics,
    chance={"textfooler": {str(k): k / 20 for k in range(1, 11)}},
  )
  assert [p.name for p in paths] == ["training_curves.png", "figure6_ig.png"]
  with pytest.raises(ValueError, match="no metrics"):
    plots.training_curves([], tmp_path / "none.png")


def test_compare_page_puts_runs_side_by_side(tmp_path):
  from flat_jax.report.__main__ import main

  for name, mode, aa in (("base", "base", 40.0), ("flat", "flat", 55.0)):
    (tmp_path / name).mkdir()
    results = _results(mode, 0.9)
    results["after_attack"]["textfooler"]["accuracy"] = aa
    (tmp_path / name / "results.json").write_text(json.dumps(results))
  assert (
    main([str(tmp_path / "base"), str(tmp_path / "flat"), "--html", str(tmp_path / "c.html")]) == 0
  )
  text = (tmp_path / "c.html").read_text()
  assert "<thead><tr><th></th><th>base</th><th>flat</th></tr></thead>" in text
  assert "<tr><td>after Textfooler (%)</td><td>40.00</td><td>55.00</td></tr>" in text
  assert "<tr><td>IG top-5 (Textfooler)</td><td>0.450</td><td>0.450</td></tr>" in text
  assert text.count('src="data:image/png;base64,') == 1  # Figure 6, a curve per run
