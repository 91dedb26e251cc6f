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
  return importance.analyze([0.9, 0.7, 0.1, 0.2], vocab, ["a b c e", "a a c"], records,
                            synonym_space=space, num_synonyms=1)


def _results(mode, topk):
  return {"dataset": "trec", "model": "cnn", "mode": mode, "status": "finished",
          "rounds_done": 3 if mode == "flat" else 0, "standard_accuracy": 88.4,
          "attack": {"recipe": "textfooler"}, "flat": {"beta": 0.1, "gamma": 0.001},
          "after_attack": {"textfooler": {"accuracy": 54.8, "num_examples": 2}},
          "interpretation": {"ig": {"textfooler": {
              "kendall_tau": 0.5, "topk_intersection": {str(k): topk * k / 10 for k in range(1, 11)}}}}}


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
  (run / "config.json").write_text(json.dumps({"attack": {"recipe": "textfooler"},
                                               "flat": {"beta": 0.1, "gamma": 0.001}, "data": {}}))
  records = [
      {"index": 0, "label": 3, "status": "successful", "original": "who's the <best> actor ?",
       "perturbed": "who's the <finest> actor ?", "original_output": 3, "perturbed_output": 1,
       "replaced": [[3, "best", "finest"]]},
      {"index": 1, "label": 0, "status": "failed", "original": "what is x ?",
       "perturbed": "what is x ?", "original_output": 0, "perturbed_output": 0, "replaced": []},
  ]
  (run / "attacks" / "test_textfooler.jsonl").write_text("\n".join(map(json.dumps, records)) + "\n")
  return run


def _attribute(texts):
  """Six TREC classes; for every class 'best' and 'finest' weigh +2, 'actor' -1, the rest 0.5; the
  last word ('?') left out, as a model that reads only the first words."""
  weights = {"best": 2.0, "finest": 2.0, "actor": -1.0}
  return [np.tile([weights.get(w, 0.5) for w in tokenize(clean_text(t))[:-1]], (6, 1)) for t in texts]


def test_page_shows_coloured_escaped_pairs_and_embeds_everything(tmp_path):
  run = _workdir(tmp_path)
  images = plots.write_run_plots(run / "report", analysis=_analysis(),
                                 runs={"CNN-FLAT": _results("flat", 0.9)})
  page = html.write_page(run, attribute=_attribute, images=images, importance=_analysis().summary)
  assert page == run / "report" / "index.html"
  text = page.read_text(encoding="utf-8")
  # cleaned "who 's the best actor ?": the quote escaped; cleaning dropped the brackets of <best>
  assert "&#x27;s</span>" in text and "<best>" not in text and "<finest>" not in text
  assert re.search(r'<span class="w sub" style="background-color: rgba\(214, 39, 40, 1\.00\)[^"]*" '
                   r'title="\+2\.0000">finest</span>', text)
  assert re.search(r'<span class="w" style="background-color: rgba\(31, 119, 180, 0\.50\)" '
                   r'title="-1\.0000">actor</span>', text)
  assert '<span class="pred">[HUM]</span>' in text and '<span class="pred flip">[ENTY]</span>' in text
  assert '<span class="w" title="not read by the model">?</span>' in text
  assert "what is x" not in text                       # unchanged text: not a pair
  assert text.count('src="data:image/png;base64,') == len(images) == 3
  for data in re.findall(r'src="data:image/png;base64,([^"]+)"', text):
    assert base64.b64decode(data)[:8] == PNG_MAGIC
  # one file: nothing fetched from elsewhere
  assert not re.search(r"<link|<script|https?://|src=\"(?!data:)|url\(", text)
  assert "<td>CNN-FLAT (Textfooler)</td>" in text      # Table 2 as an HTML table
  assert "Table 4" not in text                         # no SST-2 run: empty table left out
  assert "global importance vs word frequency" in text


def test_page_checks_the_attribution_function(tmp_path):
  run = _workdir(tmp_path)
  with pytest.raises(ValueError, match="attribute returned 1 results for 2 texts"):
    html.write_page(run, attribute=lambda texts: _attribute(texts[:1]), out=tmp_path / "x.html")
  page = html.write_page(run, out=tmp_path / "plain.html")
  assert "pairs not shown" in page.read_text()


def test_markdown_conversion_of_a_table():
  converted = html.markdown_to_html("Title **bold** <x>\n\n| A | B |\n|---|---|\n| 1 & 2 | 3 |\n\n- item")
  assert "<p>Title <strong>bold</strong> &lt;x&gt;</p>" in converted
  assert "<table><tr><th>A</th><th>B</th></tr>\n<tr><td>1 &amp; 2</td><td>3</td></tr>" in converted
  assert "<ul><li>item</li></ul>" in converted
