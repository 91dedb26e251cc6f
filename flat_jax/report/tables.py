"""Markdown tables in the layout of the paper's Tables 2-5, our figures beside the paper's.

Input: results.json files (a workdir, or any folder holding one). A cell reads "ours (paper)"; "-"
where we have no run. Runs with the same key (dataset, model, mode, training attack, beta, gamma)
are averaged and the cell says over how many.
"""

from __future__ import annotations

import collections
import json
import pathlib
from typing import Iterable, Sequence

import numpy as np

from flat_jax.report import paper

PAPER_BETA_GAMMA = (0.1, 0.001)


def load_runs(paths: Iterable) -> list[dict]:
  """results.json of each path (a results.json file, or a folder holding one)."""
  runs = []
  for path in paths:
    path = pathlib.Path(path)
    file = path / "results.json" if path.is_dir() else path
    if not file.exists():
      raise FileNotFoundError(f"{path}: no results.json")
    run = json.loads(file.read_text())
    run["_path"] = str(file)
    config_file = file.parent / "config.json"
    if run.get("mode") == "flat" and "flat" not in run and config_file.exists():
      flat = json.loads(config_file.read_text())["flat"]
      run["flat"] = {"beta": flat["beta"], "gamma": flat["gamma"]}
    runs.append(run)
  return runs


# modes pgd and freelb at TextDefender's settings (config.embedding_adversary) need no label
DEFAULT_ADVERSARY = {"steps": 5, "step_size": 0.03, "init_magnitude": 0.05, "max_norm": 0.0}
EMBEDDING_MODES = ("pgd", "freelb")


def _key(run: dict):
  """(model, mode, training attack, settings): the training attack is None for base and for pgd
  and freelb without attack rounds; settings are FLAT's (beta, gamma[, entropy reduction]) or, for
  pgd and freelb away from the defaults, ("adversary", K, step size, init magnitude, max norm)."""
  attack = run.get("attack", {}).get("recipe") if run["mode"] != "base" else None
  if run["mode"] in EMBEDDING_MODES and not run.get("rounds"):
    attack = None
  flat = run.get("flat", {})
  settings = None
  if run["mode"] == "flat":
    settings = (flat.get("beta"), flat.get("gamma"))
    if flat.get("entropy_reduction", "sum") != "sum":  # not the paper's objective: its own row
      settings += (flat["entropy_reduction"],)
  adversary = {**DEFAULT_ADVERSARY, **run.get("embedding_adversary", {})}
  if run["mode"] in EMBEDDING_MODES and adversary != DEFAULT_ADVERSARY:
    settings = ("adversary",) + tuple(adversary[k] for k in DEFAULT_ADVERSARY)
  return run["model"], run["mode"], attack, settings


def _groups(runs: Sequence[dict]) -> dict:
  groups = collections.defaultdict(list)
  for run in runs:
    groups[(run["dataset"], *_key(run))].append(run)
  return groups


def _mean(values):
  """(mean, number of runs, lowest, highest) of the runs that have the figure."""
  values = [v for v in values if v is not None]
  if not values:
    return None, 0, None, None
  return float(np.mean(values)), len(values), min(values), max(values)


def _cell(ours, paper_value, digits=2) -> str:
  value, n, low, high = ours if isinstance(ours, tuple) else (ours, 1, ours, ours)
  text = (
    "-"
    if value is None
    else f"{value:.{digits}f}"
    + (f" [{n} runs: {low:.{digits}f}-{high:.{digits}f}]" if n > 1 else "")
  )
  return text if paper_value is None else f"{text} ({paper_value:.{digits}f})"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
  lines += ["| " + " | ".join(row) + " |" for row in rows]
  return "\n".join(lines)


def _row_keys(groups):
  """(model, mode, attack, beta_gamma) in the paper's order, for every key we have a run of."""
  present = {k[1:] for k in groups}
  order = {m: i for i, m in enumerate(paper.MODELS)}
  modes = {m: i for i, m in enumerate(paper.MODE_NAMES)}
  attacks = {None: 0, "textfooler": 1, "pwws": 2}
  return sorted(
    present, key=lambda k: (order.get(k[0], 9), modes.get(k[1], 9), attacks.get(k[2], 3), str(k[3]))
  )


def _label(model, mode, attack, beta_gamma, with_attack=True) -> str:
  label = f"{paper.MODEL_NAMES.get(model, model)}-{paper.MODE_NAMES.get(mode, mode)}"
  if with_attack and attack:
    label += f" ({paper.ATTACK_NAMES.get(attack, attack)})"
  if beta_gamma and beta_gamma[0] == "adversary":
    return label + " K={:g} step={:g} init={:g} max-norm={:g}".format(*beta_gamma[1:])
  if beta_gamma and None not in beta_gamma and tuple(beta_gamma[:2]) != PAPER_BETA_GAMMA:
    label += f" β={beta_gamma[0]:g} γ={beta_gamma[1]:g}"
  if beta_gamma and len(beta_gamma) > 2:
    label += f" (entropy {beta_gamma[2]})"
  return label


def _is_paper_setting(beta_gamma) -> bool:
  return beta_gamma is None or tuple(beta_gamma) == PAPER_BETA_GAMMA


def _datasets(groups):
  present = {k[0] for k in groups}
  return [d for d in paper.DATASETS if d in present] + sorted(present - set(paper.DATASETS))


def table2(runs: Sequence[dict]) -> str:
  groups = _groups(runs)
  datasets = _datasets(groups)
  rows = []
  for model, mode, attack, bg in _row_keys(groups):
    ref = paper.TABLE2.get((model, mode, attack), {}) if _is_paper_setting(bg) else {}
    rows.append(
      [_label(model, mode, attack, bg)]
      + [
        _cell(
          _mean([r.get("standard_accuracy") for r in groups.get((d, model, mode, attack, bg), [])]),
          ref.get(d),
        )
        for d in datasets
      ]
    )
  return "Table 2: standard test accuracy (%), ours (paper).\n\n" + _table(
    ["Models"] + [paper.DATASET_NAMES.get(d, d) for d in datasets], rows
  )


def _interpretation(run, method, recipe, field):
  scores = run.get("interpretation", {}).get(method, {}).get(recipe)
  if not scores or "kendall_tau" not in scores:  # no original/adversarial pairs to compare
    return None
  return scores["kendall_tau"] if field == "kt" else scores["topk_intersection"].get("5")


def table3(runs: Sequence[dict], method: str = "ig") -> str:
  """AA / KT / TI under each training attack: adv and FLAT models trained with that attack, and
  base models attacked with it."""
  groups = _groups(runs)
  datasets = _datasets(groups)
  parts = []
  for recipe in ("textfooler", "pwws"):
    rows = []
    for model, mode, attack, bg in _row_keys(groups):
      if attack is not None and attack != recipe:  # base, pgd, freelb: no training attack
        continue
      ref = paper.TABLE3.get((recipe, model, mode), {}) if _is_paper_setting(bg) else {}
      # pgd/freelb come with and without attack rounds: the label says which
      row = [_label(model, mode, attack if mode in EMBEDDING_MODES else None, bg)]
      for d in datasets:
        group = groups.get((d, model, mode, attack, bg), [])
        aa = _mean([r.get("after_attack", {}).get(recipe, {}).get("accuracy") for r in group])
        kt = _mean([_interpretation(r, method, recipe, "kt") for r in group])
        ti = _mean([_interpretation(r, method, recipe, "ti") for r in group])
        paper_cells = ref.get(d, (None, None, None))
        row += [_cell(aa, paper_cells[0]), _cell(kt, paper_cells[1]), _cell(ti, paper_cells[2])]
      if any(not c.startswith("-") for c in row[1:]):
        rows.append(row)
    if rows:
      header = ["Models"] + [
        f"{paper.DATASET_NAMES.get(d, d)} {m}" for d in datasets for m in ("AA", "KT", "TI")
      ]
      parts.append(f"**{paper.ATTACK_NAMES[recipe]}**\n\n" + _table(header, rows))
  return (
    f"Table 3: after-attack accuracy (AA, %), Kendall's tau (KT) and top-5 intersection (TI) "
    f"of {method.upper()} attributions, ours (paper).\n\n" + "\n\n".join(parts or ["(no runs)"])
  )


def table4(runs: Sequence[dict]) -> str:
  """After-attack accuracy on SST-2 of base models and of models trained with Textfooler."""
  groups = {
    k: v for k, v in _groups(runs).items() if k[0] == "sst2" and k[3] in (None, "textfooler")
  }
  rows = []
  for model, mode, attack, bg in _row_keys(groups):
    ref = paper.TABLE4.get((model, mode), {}) if _is_paper_setting(bg) else {}
    group = groups[("sst2", model, mode, attack, bg)]
    ours = [
      _mean([r.get("after_attack", {}).get(a, {}).get("accuracy") for r in group])
      for a in paper.TRANSFER_ATTACKS
    ]
    if all(value is None for value, *_ in ours):
      continue  # a run not attacked with the transfer attacks: nothing to show, not a row of dashes
    rows.append(
      [_label(model, mode, None, bg)]
      + [_cell(value, ref.get(a)) for value, a in zip(ours, paper.TRANSFER_ATTACKS)]
    )
  return (
    "Table 4: after-attack accuracy (%) on SST-2 under attacks not seen in training (adv and "
    "FLAT trained with Textfooler), ours (paper).\n\n"
    + _table(
      ["Models"] + [paper.ATTACK_NAMES[a] for a in paper.TRANSFER_ATTACKS],
      rows or [["(no SST-2 runs)"] + [""] * len(paper.TRANSFER_ATTACKS)],
    )
  )


def table5(runs: Sequence[dict]) -> str:
  """The beta/gamma ablation of LSTM-FLAT on SST-2 trained with Textfooler."""
  groups = {
    k[4]: v for k, v in _groups(runs).items() if k[:4] == ("sst2", "lstm", "flat", "textfooler")
  }
  rows = []
  for bg in sorted(groups, key=lambda x: (-x[0], -x[1])):
    ref = paper.TABLE5.get(tuple(bg), (None, None))
    group = groups[bg]
    rows.append(
      [
        f"β = {bg[0]:g}, γ = {bg[1]:g}",
        _cell(_mean([r.get("standard_accuracy") for r in group]), ref[0]),
        _cell(
          _mean([r.get("after_attack", {}).get("textfooler", {}).get("accuracy") for r in group]),
          ref[1],
        ),
      ]
    )
  return (
    "Table 5: LSTM-FLAT on SST-2 (Textfooler) with and without its regularisers; SA standard "
    "accuracy (%), AA after-attack accuracy (%), ours (paper).\n\n"
    + _table(["Hyperparameters", "SA", "AA"], rows or [["(no LSTM-FLAT SST-2 runs)", "", ""]])
  )


def static_sets_table(runs: Sequence[dict]) -> str:
  """Accuracy on the fixed adversarial sets of eval.static_sets ("" when no run has one)."""
  names = sorted({n for r in runs for n in r.get("static_sets", {})})
  if not names:
    return ""
  rows = []
  for r in runs:
    cells = [r.get("static_sets", {}).get(n, {}) for n in names]
    rows.append(
      [f"{paper.DATASET_NAMES.get(r.get('dataset'), r.get('dataset'))} {_label(*_key(r))}"]
      + [f"{c['accuracy']:.2f} ({c['num_examples']})" if c else "-" for c in cells]
    )
  return (
    "Static adversarial sets: accuracy (%) on each fixed set (texts in brackets), no attack "
    "run.\n\n" + _table(["Run"] + names, rows)
  )


def quality_table(runs: Sequence[dict]) -> str:
  """Quality of each run's adversarial examples per attack (results.json "attack_quality",
  flat_jax/attacks/quality.py); "" when no run has it."""
  rows = []
  for r in runs:
    for recipe, q in sorted(r.get("attack_quality", {}).items()):

      def mean(metric, digits=2):
        m = q.get(metric, {})
        return f"{m['mean']:.{digits}f}" if m.get("n") else "-"

      def spread(metric):
        m = q.get(metric, {})
        if not m.get("n"):
          return "-"
        p = m["percentiles"]
        return f"{m['mean']:.2f} [{p['10']:.2f}-{p['90']:.2f}]"

      rows.append(
        [
          f"{paper.DATASET_NAMES.get(r.get('dataset'), r.get('dataset'))} {_label(*_key(r))}",
          paper.ATTACK_NAMES.get(recipe, recipe),
          str(q.get("num_examples", 0)),
          mean("words_changed"),
          spread("perturbed_fraction"),
          spread("similarity"),
          mean("synonym_share"),
          mean("pos_agreement"),
        ]
      )
  if not rows:
    return ""
  return (
    "Quality of the adversarial examples (successful attacks): mean [10th-90th percentile]; "
    "similarity is the sentence encoder's cosine, synonyms the share of substitutes that are "
    "WordNet synonyms of the replaced word, POS the share keeping its part of speech.\n\n"
    + _table(
      [
        "Run",
        "attack",
        "examples",
        "words changed",
        "fraction changed",
        "similarity",
        "synonyms",
        "POS kept",
      ],
      rows,
    )
  )


def faithfulness_table(runs: Sequence[dict]) -> str:
  """AOPC of comprehensiveness and sufficiency per run and method, beside a random ranking's;
  "" when no run has them."""
  rows = []
  for r in runs:
    for method, f in sorted(r.get("faithfulness", {}).items()):
      if not f.get("num_texts"):
        continue
      rows.append(
        [
          f"{paper.DATASET_NAMES.get(r.get('dataset'), r.get('dataset'))} {_label(*_key(r))}",
          method.upper(),
          str(f["num_texts"]),
          f"{f['aopc_comprehensiveness']:.3f} ({f['aopc_comprehensiveness_random']:.3f})",
          f"{f['aopc_sufficiency']:.3f} ({f['aopc_sufficiency_random']:.3f})",
        ]
      )
  if not rows:
    return ""
  return (
    "Faithfulness: AOPC (k = 1..10 words) of comprehensiveness (probability drop when the top-k "
    "words are deleted; higher is faithful) and sufficiency (drop when only they are kept; "
    "lower is faithful), a random ranking of the same texts in brackets.\n\n"
    + _table(["Run", "method", "texts", "comprehensiveness", "sufficiency"], rows)
  )


def _describe(run: dict) -> str:
  attacked = ", ".join(
    f"{recipe} on {s['num_examples']}" for recipe, s in run.get("after_attack", {}).items()
  )
  return (
    f"{run.get('_path', '?')}: {run['dataset']} {_label(*_key(run))}, {run.get('status')}, "
    f"{run.get('rounds_done', 0)} rounds, test examples attacked: {attacked or 'none'}"
  )


def render(runs: Sequence[dict]) -> str:
  sources = "\n".join(f"- {_describe(r)}" for r in runs)
  parts = [
    table2(runs),
    table3(runs),
    table4(runs),
    table5(runs),
    static_sets_table(runs),
    quality_table(runs),
    faithfulness_table(runs),
  ]
  return "\n\n".join([p for p in parts if p] + ["Runs:\n\n" + sources]) + "\n"
