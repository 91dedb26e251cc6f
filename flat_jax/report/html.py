"""One self-contained HTML page per run (DIR/report/index.html): the run, the paper's tables, the
plots (embedded as base64 data URIs) and the paper's Figure 3, original/adversarial test pairs with
each word coloured by its attribution to the predicted class (red for, blue against, intensity by
magnitude normalised per text) and the predictions in brackets.
"""

from __future__ import annotations

import base64
import html
import json
import pathlib
import re
from typing import Callable, Sequence

import numpy as np

from flat_jax.data.text import clean_text, tokenize
from flat_jax.interpret.consistency import align_positions
from flat_jax.attacks.generate import records_by_index
from flat_jax.interpret.pairs import counterpart_records
from flat_jax.report import paper, tables
from flat_jax.report.plots import run_label

POSITIVE_RGB, NEGATIVE_RGB = (214, 39, 40), (31, 119, 180)
CAPTIONS = {
  "training_curves": "Training: train loss and dev accuracy per epoch, every stage on one step axis.",
  "figure4": "Figure 4: global importance φ against word and substitution frequency.",
  "figure5": "Figure 5: L1 difference between φ of 1000 sampled words and φ of their 10 nearest "
  "synonyms (and of 10 random words, for reference).",
  "figure6_ig": "Figure 6: top-k intersection of IG attributions on original/adversarial pairs "
  "(dashed: what random rankings of the same texts score).",
  "figure6_lime": "Top-k intersection of LIME attributions on original/adversarial pairs.",
}
STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1150px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; }
th { background: #f3f3f3; text-align: left; }
table.pairs td.text { line-height: 1.9; } table.pairs td.num { text-align: right; color: #777; }
.w { padding: 1px 3px; margin: 0 1px; border-radius: 3px; }
.sub { outline: 2px solid #333; outline-offset: -1px; font-weight: 600; }
.pred { font-weight: 600; white-space: nowrap; } .flip { color: #b00; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption, .note { color: #555; font-size: 0.9em; }
.meta td:first-child { font-weight: 600; background: #fafafa; }
.controls { margin: 0.6em 0; display: flex; gap: 0.8em; flex-wrap: wrap; align-items: center;
            font-size: 0.92em; }
.controls input[type=search] { width: 16em; } .count { color: #555; }
table.sortable th { cursor: pointer; user-select: none; } table.sortable th:hover { background: #e8e8e8; }
.scroll { max-height: 32em; overflow-y: auto; display: inline-block; border: 1px solid #eee; }
"""

# Search, filters and sorting for the pairs and the phi table, inline (the page stays one file).
# A table's controls sit in the .controls block just before it; rows carry data-* fields.
SCRIPT = """
function rowsOf(table) { return Array.from(table.tBodies[0].rows); }
function applyFilters(table) {
  const box = table._box;
  const get = (name) => box.querySelector('[data-filter="' + name + '"]');
  const text = (get('search') || {}).value || '';
  const status = (get('status') || {}).value || '';
  const label = (get('label') || {}).value || '';
  const flipped = (get('flipped') || {}).checked || false;
  let shown = 0;
  for (const row of rowsOf(table)) {
    const ok = (!text || row.textContent.toLowerCase().includes(text.toLowerCase()))
      && (!status || row.dataset.status === status) && (!label || row.dataset.label === label)
      && (!flipped || row.dataset.flipped === '1');
    row.style.display = ok ? '' : 'none';
    shown += ok;
  }
  const count = box.querySelector('.count');
  if (count) count.textContent = shown + ' of ' + rowsOf(table).length + ' shown';
}
function sortBy(table, key, numeric, descending) {
  const rows = rowsOf(table);
  const value = (row) => { const v = row.dataset[key] !== undefined ? row.dataset[key]
                                   : row.cells[Number(key)].dataset.v ?? row.cells[Number(key)].textContent;
                           return numeric ? parseFloat(v) : v.toLowerCase(); };
  rows.sort((a, b) => { const x = value(a), y = value(b);
                        return (x < y ? -1 : x > y ? 1 : 0) * (descending ? -1 : 1); });
  rows.forEach((row) => table.tBodies[0].appendChild(row));
}
document.querySelectorAll('.controls').forEach((box) => {
  const next = box.nextElementSibling;
  const table = next.tagName === 'TABLE' ? next : next.querySelector('table');
  table._box = box;
  box.querySelectorAll('[data-filter]').forEach((el) =>
    el.addEventListener('input', () => applyFilters(table)));
  const sort = box.querySelector('[data-sort]');
  if (sort) sort.addEventListener('change', () => {
    const [key, kind, order] = sort.value.split(':');
    sortBy(table, key, kind === 'n', order === 'desc'); });
  applyFilters(table);
});
document.querySelectorAll('table.sortable').forEach((table) => {
  Array.from(table.tHead.rows[0].cells).forEach((th, i) => th.addEventListener('click', () => {
    const descending = th.dataset.order !== 'desc';
    th.dataset.order = descending ? 'desc' : 'asc';
    sortBy(table, String(i), th.dataset.kind === 'n', descending); }));
});
"""


def colour(score: float) -> str:
  """CSS background for a normalised attribution in [-1, 1]: red for, blue against the class."""
  if not np.isfinite(score):
    raise ValueError(f"attribution must be finite, got {score}")
  r, g, b = POSITIVE_RGB if score >= 0 else NEGATIVE_RGB
  alpha = min(abs(score), 1.0)
  text = "; color: #fff" if alpha > 0.6 else ""  # dark text is hard to read on a strong colour
  return f"background-color: rgba({r}, {g}, {b}, {alpha:.2f}){text}"


def coloured_words(words: Sequence[str], scores, marked: Sequence[int] = ()) -> str:
  """Spans of `words` coloured by `scores` (one per word, normalised here by the largest magnitude);
  words beyond the scores (truncated by the model) stay uncoloured; `marked` positions are framed."""
  scores = np.asarray(scores, np.float64)
  if scores.ndim != 1 or scores.size > len(words):
    raise ValueError(
      f"expected at most one attribution per word ({len(words)}), got shape {scores.shape}"
    )
  scale = np.abs(scores).max() if scores.size else 0.0
  normalised = scores / scale if scale > 0 else np.zeros_like(scores)
  marked = set(marked)
  spans = []
  for i, word in enumerate(words):
    cls = "w sub" if i in marked else "w"
    if i < scores.size:
      spans.append(
        f'<span class="{cls}" style="{colour(normalised[i])}" '
        f'title="{scores[i]:+.4f}">{html.escape(word)}</span>'
      )
    else:
      spans.append(f'<span class="{cls}" title="not read by the model">{html.escape(word)}</span>')
  return " ".join(spans)


def _label(label_names: Sequence[str], label) -> str:
  return label_names[label] if 0 <= label < len(label_names) else str(label)


def pairs_table(
  records: Sequence[dict], attribute: Callable, label_names: Sequence[str], limit: int | None = None
) -> str:
  """Figure 3: every record whose text the attack changed (the first `limit` if given), both texts
  coloured by `attribute(texts) -> [(C, n_words)]` at the predicted class, replaced words framed;
  with a search box, filters (attack status, label, prediction changed) and sorting."""
  pairs = counterpart_records(records)[:limit]
  if not pairs:
    return '<p class="note">No attacked test example had its text changed.</p>'
  texts = [r["original"] for r in pairs] + [r["perturbed"] for r in pairs]
  attributions = attribute(texts)
  if len(attributions) != len(texts):
    raise ValueError(f"attribute returned {len(attributions)} results for {len(texts)} texts")
  rows = []
  for n, (record, a_orig, a_adv) in enumerate(
    zip(pairs, attributions, attributions[len(pairs) :]), 1
  ):
    words_orig = tokenize(clean_text(record["original"]))
    words_adv = tokenize(clean_text(record["perturbed"]))
    changed = [
      (i, j) for i, j in align_positions(words_orig, words_adv) if words_orig[i] != words_adv[j]
    ]
    pred_orig, pred_adv = int(record["original_output"]), int(record["perturbed_output"])
    cells = []
    for words, attr, pred, marked in (
      (words_orig, a_orig, pred_orig, [i for i, _ in changed]),
      (words_adv, a_adv, pred_adv, [j for _, j in changed]),
    ):
      attr = np.asarray(attr)
      if attr.ndim != 2 or pred >= attr.shape[0]:
        raise ValueError(
          f"attribution of shape {attr.shape}: expected (classes, words) with a row "
          f"for predicted class {pred}"
        )
      flip = " flip" if pred != int(record["label"]) else ""
      cells.append(
        f'<td class="text"><span class="pred{flip}">[{html.escape(_label(label_names, pred))}]'
        f"</span> {coloured_words(words, attr[pred], marked)}</td>"
      )
    label = html.escape(_label(label_names, int(record["label"])))
    rows.append(
      f'<tr data-n="{n}" data-status="{html.escape(record["status"])}" data-label="{label}" '
      f'data-flipped="{int(pred_adv != pred_orig)}" data-changed="{len(changed)}" '
      f'data-length="{len(words_orig)}"><td class="num">{n}</td><td>{label}</td>'
      f'<td>{html.escape(record["status"])}</td><td class="num">{len(changed)}</td>'
      f"{''.join(cells)}</tr>"
    )
  statuses = sorted({r["status"] for r in pairs})
  labels = sorted({_label(label_names, int(r["label"])) for r in pairs})
  option = lambda v: f'<option value="{html.escape(v)}">{html.escape(v)}</option>'
  controls = (
    '<div class="controls"><input type="search" data-filter="search" placeholder="search the texts">'
    f'<label>attack <select data-filter="status"><option value="">any</option>'
    f"{''.join(map(option, statuses))}</select></label>"
    f'<label>label <select data-filter="label"><option value="">any</option>'
    f"{''.join(map(option, labels))}</select></label>"
    '<label><input type="checkbox" data-filter="flipped"> prediction changed</label>'
    '<label>sort <select data-sort><option value="n:n:asc">test order</option>'
    '<option value="changed:n:desc">most words replaced</option>'
    '<option value="changed:n:asc">fewest words replaced</option>'
    '<option value="length:n:desc">longest</option><option value="length:n:asc">shortest</option>'
    f'</select></label><span class="count">{len(pairs)} of {len(pairs)} shown</span></div>'
  )
  return (
    controls + '<table class="pairs"><thead><tr><th>#</th><th>label</th><th>attack</th>'
    "<th>replaced</th><th>original [prediction]</th><th>adversarial [prediction]</th></tr>"
    "</thead><tbody>\n" + "\n".join(rows) + "</tbody></table>"
  )


def rounds_table(results: dict) -> str:
  """One row per adversarial training round: the attack on the training set and the model after."""
  rounds = results.get("rounds", [])
  if not rounds:
    return '<p class="note">No adversarial training rounds (a base run).</p>'
  fmt = lambda v, d=1: "-" if v is None else (f"{v:.{d}f}" if isinstance(v, float) else str(v))
  rows = []
  for k, r in enumerate(rounds, 1):
    attack = r.get("attack", {})
    rows.append(
      "<tr>"
      + "".join(
        f"<td>{html.escape(fmt(v))}</td>"
        for v in (
          k,
          r.get("attacked_model"),
          attack.get("recipe", results.get("attack", {}).get("recipe")),
          attack.get("num_examples"),
          attack.get("success_rate"),
          r.get("kept"),
          r.get("vocab_added"),
          r.get("dev_accuracy"),
          r.get("best_epoch"),
        )
      )
      + "</tr>"
    )
  return (
    "<table><thead><tr><th>round</th><th>attacked model</th><th>attack</th><th>attacked</th>"
    "<th>success rate (%)</th><th>adversarial examples kept</th><th>words added</th>"
    "<th>dev accuracy after (%)</th><th>best epoch</th></tr></thead><tbody>"
    + "".join(rows)
    + "</tbody></table>"
  )


def phi_table(analysis) -> str:
  """Every analysed word's global importance φ with its training and substitution counts: sortable
  by any column, searchable."""
  rows = "".join(
    f'<tr><td>{html.escape(w)}</td><td data-v="{p:.6f}">{p:.3f}</td><td>{int(f)}</td><td>{int(c)}</td></tr>'
    for w, p, f, c in sorted(
      zip(analysis.words, analysis.phi, analysis.word_freq, analysis.sub_freq),
      key=lambda row: -row[1],
    )
  )
  return (
    '<div class="controls"><input type="search" data-filter="search" placeholder="find a word">'
    '<span class="count"></span></div><div class="scroll"><table class="sortable">'
    '<thead><tr><th>word</th><th data-kind="n">φ</th><th data-kind="n">in training texts</th>'
    '<th data-kind="n">times substituted</th></tr></thead><tbody>' + rows + "</tbody></table></div>"
  )


def _inline(text: str) -> str:
  return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text))


def _markdown_table(lines: Sequence[str]) -> str:
  cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
  separator = len(cells) > 1 and all(c and set(c) <= set("-: ") for c in cells[1])
  header, body = cells[0], cells[2:] if separator else cells[1:]
  head = "".join(f"<th>{_inline(c)}</th>" for c in header)
  rows = "".join(
    "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>\n" for row in body
  )
  return f"<table><tr>{head}</tr>\n{rows}</table>"


def markdown_to_html(text: str) -> str:
  """The markdown flat_jax.report.tables writes (pipe tables, paragraphs, '- ' lists, **bold**)."""
  blocks, out = re.split(r"\n\s*\n", text.strip()), []
  for block in blocks:
    lines = block.splitlines()
    if all(line.lstrip().startswith("|") for line in lines):
      out.append(_markdown_table(lines))
    elif all(line.startswith("- ") for line in lines):
      out.append("<ul>" + "".join(f"<li>{_inline(line[2:])}</li>" for line in lines) + "</ul>")
    else:
      out.append(f"<p>{'<br>'.join(_inline(line) for line in lines)}</p>")
  return "\n".join(out)


def tables_html(workdirs: Sequence) -> str:
  """The paper's tables for these runs (flat_jax.report.tables) as HTML, leaving out the tables
  none of the runs has a row for (e.g. the SST-2-only Tables 4 and 5 on a TREC page)."""
  runs = tables.load_runs(workdirs)
  parts = [tables.table2(runs), tables.table3(runs, "ig")]
  if any(run.get("interpretation", {}).get("lime") for run in runs):
    parts.append(tables.table3(runs, "lime"))
  parts += [tables.table4(runs), tables.table5(runs)]
  if static := tables.static_sets_table(runs):
    parts.append(static)
  parts = [part for part in parts if "| (no " not in part and not part.endswith("(no runs)")]
  parts.append("Runs:\n\n" + tables.render(runs).split("Runs:\n\n")[-1])
  return "\n".join(markdown_to_html(part) for part in parts)


def image_html(path) -> str:
  path = pathlib.Path(path)
  if path.suffix.lower() != ".png":
    raise ValueError(f"{path}: only PNG images are embedded")
  data = base64.b64encode(path.read_bytes()).decode("ascii")
  caption = CAPTIONS.get(path.stem, path.stem)
  return (
    f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'
    f"<figcaption>{html.escape(caption)}</figcaption></figure>"
  )


def importance_html(summary: dict) -> str:
  """Table 9 (Pearson correlations) and the Figure 5 numbers of an importance analysis summary."""
  fmt = lambda v: "undefined" if v is None else f"{v:.3f}"
  names = {
    "sub_freq_vs_word_freq": "substitution frequency vs word frequency",
    "phi_vs_word_freq": "global importance vs word frequency",
    "phi_vs_sub_freq": "global importance vs substitution frequency",
  }
  rows = "".join(
    f"<tr><td>{name}</td><td>{fmt(summary['pearson'][key])}</td>"
    f"<td>{fmt(summary['pearson_log'][key])}</td></tr>"
    for key, name in names.items()
  )
  parts = [
    f"<p>Table 9: Pearson correlations over the {summary['num_words']} vocabulary words of "
    f"the training set; {summary['num_replacements']} replacements in "
    f"{summary['num_records']} adversarial training examples.</p>",
    f"<table><tr><th>pair</th><th>Pearson r (counts)</th><th>Pearson r (log(1 + count))</th>"
    f"</tr>{rows}</table>",
  ]
  if "synonym_l1" in summary:
    s = summary["synonym_l1"]
    stats = "".join(
      f"<tr><td>{name}</td>"
      + "".join(f"<td>{s[key][f]:.3f}</td>" for f in ("mean", "std", "median", "q1", "q3"))
      + "</tr>"
      for key, name in (("synonyms", "nearest synonyms"), ("random_words", "random words"))
    )
    parts.append(
      f"<p>Figure 5 figures: Σ|φ(w) − φ(s)| over {s['num_synonyms']} words s for "
      f"{s['num_words']} sampled words w (mean neighbour cosine "
      f"{s['neighbour_cosine']['mean']:.2f}).</p><table><tr><th></th><th>mean</th>"
      f"<th>std</th><th>median</th><th>q1</th><th>q3</th></tr>{stats}</table>"
    )
  return "\n".join(parts)


def _label_names(results: dict, config: dict) -> tuple[str, ...]:
  from flat_jax.data.datasets import REGISTRY

  if config.get("data", {}).get("label_names"):
    return tuple(config["data"]["label_names"])
  spec = REGISTRY.get(results.get("dataset"))
  return spec.label_names if spec else ()


def _header(results: dict, config: dict) -> str:
  rows = [
    ("dataset", paper.DATASET_NAMES.get(results.get("dataset"), results.get("dataset"))),
    ("model", paper.MODEL_NAMES.get(results.get("model"), results.get("model"))),
    ("mode", results.get("mode")),
    ("rounds", results.get("rounds_done", 0)),
    ("status", results.get("status")),
  ]
  if results.get("mode") != "base" and "attack" in config:
    rows.append(("training attack", config["attack"].get("recipe")))
  if results.get("mode") == "flat" and "flat" in config:
    rows.append(("β, γ", f"{config['flat']['beta']:g}, {config['flat']['gamma']:g}"))
  if "standard_accuracy" in results:
    rows.append(("standard accuracy", f"{results['standard_accuracy']:.2f} %"))
  for attack, s in results.get("after_attack", {}).items():
    at = f" (queried at T = {s['temperature']:g})" if "temperature" in s else ""
    rows.append(
      (f"after {attack}", f"{s['accuracy']:.2f} % on {s['num_examples']} test examples{at}")
    )
  body = "".join(
    f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows
  )
  return f'<table class="meta">{body}</table>'


def write_page(
  workdir,
  *,
  attribute: Callable | None = None,
  images: Sequence = (),
  compare: Sequence = (),
  importance: dict | None = None,
  analysis=None,
  attacks: Sequence[str] | None = None,
  limit: int | None = None,
  out=None,
) -> pathlib.Path:
  """Writes DIR/report/index.html (or `out`) and returns its path.

  attribute: texts -> [(C, n_words)] attributions (e.g. interpret.pairs.word_attributor_ig) for
    Figure 3; without it the pairs are not shown. images: PNG paths to embed (report.plots).
  compare: other workdirs (e.g. the base and adv runs) whose results join this run's in the tables.
  importance: the summary of an interpret.importance analysis; analysis: the analysis itself, for
    the per-word φ table. attacks: whose DIR/attacks/test_<attack>.jsonl pairs to show (default:
    all there are), every pair unless `limit`."""
  workdir = pathlib.Path(workdir)
  if not (workdir / "results.json").exists():
    raise FileNotFoundError(f"{workdir}: no results.json to report on")
  results = json.loads((workdir / "results.json").read_text())
  config_file = workdir / "config.json"
  config = json.loads(config_file.read_text()) if config_file.exists() else {}
  title = (
    f"{paper.DATASET_NAMES.get(results.get('dataset'), results.get('dataset'))} "
    f"{run_label(results)}: {workdir.name}"
  )
  sections = [
    f"<h1>{html.escape(title)}</h1>",
    _header(results, config),
    "<h2>Tables</h2>",
    tables_html([workdir, *compare]),
  ]
  if results.get("rounds"):
    sections += ["<h2>Adversarial training rounds</h2>", rounds_table(results)]
  if importance:
    sections += ["<h2>Global word importance</h2>", importance_html(importance)]
  if analysis is not None:
    sections += ["<h3>φ of every training word</h3>", phi_table(analysis)]
  if images:
    sections += ["<h2>Plots</h2>"] + [image_html(p) for p in images]
  sections.append("<h2>Figure 3: attributions on original/adversarial pairs</h2>")
  files = sorted((workdir / "attacks").glob("test_*.jsonl"))
  if attacks is not None:
    files = [workdir / "attacks" / f"test_{a}.jsonl" for a in attacks]
  if attribute is None:
    sections.append('<p class="note">No attribution method was given: pairs not shown.</p>')
  elif not files:
    sections.append('<p class="note">No attacked test examples (DIR/attacks/test_*.jsonl).</p>')
  else:
    sections.append(
      '<p class="note">Each word is coloured by its attribution to the predicted class: '
      f'<span class="w" style="{colour(0.8)}">for</span> '
      f'<span class="w" style="{colour(-0.8)}">against</span>, intensity by magnitude '
      "normalised per text (hover a word for its value). Predictions in [ ], red when wrong; "
      '<span class="w sub">framed</span> words were replaced by the attack.</p>'
    )
    label_names = _label_names(results, config)
    for file in files:
      attack = file.stem.removeprefix("test_")
      sections += [
        f"<h3>{html.escape(paper.ATTACK_NAMES.get(attack, attack))}</h3>",
        pairs_table(records_by_index(file), attribute, label_names, limit),
      ]
  page = (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
    f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
    + "\n".join(sections)
    + f"\n<script>{SCRIPT}</script>\n</body></html>\n"
  )
  out = pathlib.Path(out) if out else workdir / "report" / "index.html"
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(page, encoding="utf-8")
  return out


def _compare_rows(runs: Sequence[dict]) -> list[tuple[str, list[str]]]:
  """Facts of several runs, one list of cells per fact (a run without it: "-")."""

  def fmt(v, digits=2):
    return "-" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))

  attacks = sorted({a for r in runs for a in r.get("after_attack", {})})
  rows = [
    ("dataset", [paper.DATASET_NAMES.get(r.get("dataset"), r.get("dataset")) for r in runs]),
    ("model", [run_label(r) for r in runs]),
    ("seed", [fmt(r.get("seed")) for r in runs]),
    ("status", [fmt(r.get("status")) for r in runs]),
    ("rounds", [fmt(r.get("rounds_done", 0)) for r in runs]),
    ("standard accuracy (%)", [fmt(r.get("standard_accuracy")) for r in runs]),
    (
      "attack temperature",
      [fmt((r.get("attack_temperature") or {}).get("value"), 3) for r in runs],
    ),
  ]
  for a in attacks:
    name = paper.ATTACK_NAMES.get(a, a)
    rows.append(
      (
        f"after {name} (%)",
        [fmt(r.get("after_attack", {}).get(a, {}).get("accuracy")) for r in runs],
      )
    )
    rows.append(
      (
        f"examples attacked ({name})",
        [fmt(r.get("after_attack", {}).get(a, {}).get("num_examples")) for r in runs],
      )
    )
    for key, label in (("kendall_tau", "IG Kendall's tau"), ("topk_intersection", "IG top-5")):
      cells = []
      for r in runs:
        v = r.get("interpretation", {}).get("ig", {}).get(a, {}).get(key)
        cells.append(fmt(v.get("5") if isinstance(v, dict) else v, 3))
      rows.append((f"{label} ({name})", cells))
  for a in sorted({a for r in runs for a in r.get("dev_after_attack", {})}):
    rows.append(
      (
        f"dev after {paper.ATTACK_NAMES.get(a, a)} (%)",
        [fmt(r.get("dev_after_attack", {}).get(a, {}).get("accuracy")) for r in runs],
      )
    )
  return [(k, cells) for k, cells in rows if any(c != "-" for c in cells)]


def write_compare_page(paths: Sequence, out) -> pathlib.Path:
  """One page for several runs side by side (python -m flat_jax.report DIR... --html OUT): a column
  per run, the paper's tables over all of them, and Figure 6 with a curve per run."""
  runs = tables.load_runs(paths)
  names = [pathlib.Path(r["_path"]).parent.name for r in runs]
  head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
  body = "".join(
    f"<tr><td>{html.escape(k)}</td>"
    + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
    + "</tr>"
    for k, cells in _compare_rows(runs)
  )
  sections = [
    f"<h1>{len(runs)} runs side by side</h1>",
    f'<table class="meta"><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>',
    "<h2>Tables</h2>",
    tables_html([pathlib.Path(r["_path"]) for r in runs]),
  ]
  out = pathlib.Path(out)
  out.parent.mkdir(parents=True, exist_ok=True)
  labelled = {f"{n}: {run_label(r)}": r for n, r in zip(names, runs)}
  if any(r.get("interpretation", {}).get("ig") for r in runs):
    import tempfile
    from flat_jax.report import plots

    with tempfile.TemporaryDirectory() as tmp:
      figure = plots.figure6(labelled, pathlib.Path(tmp) / "figure6_ig.png")
      sections += ["<h2>Plots</h2>", image_html(figure)]
  page = (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
    f"<title>{len(runs)} runs</title><style>{STYLE}</style></head>\n<body>\n"
    + "\n".join(sections)
    + "\n</body></html>\n"
  )
  out.write_text(page, encoding="utf-8")
  return out
