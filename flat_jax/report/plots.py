"""PNG plots of the paper's Figures 4, 5 and 6 for a run's report (DIR/report/*.png).

Each function takes the data, writes one PNG and returns its path.
"""

from __future__ import annotations

import pathlib
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
import numpy as np  # noqa: E402

from flat_jax.report import paper  # noqa: E402

KS = tuple(range(1, 11))


def run_label(run: dict) -> str:
  """'CNN-FLAT', 'CNN-adv', 'CNN-base', 'CNN-PGD' for a results.json."""
  mode = run.get("mode", "?")
  return (
    f"{paper.MODEL_NAMES.get(run.get('model'), run.get('model', '?'))}-"
    + paper.MODE_NAMES.get(mode, mode)
  )


def _save(fig, path) -> pathlib.Path:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=110, bbox_inches="tight")
  plt.close(fig)
  return path


def _r(value) -> str:
  return "undefined" if value is None else f"{value:.2f}"


def figure4(analysis, path) -> pathlib.Path:
  """Scatter plots: (a) substitution vs word frequency, (b) phi vs word frequency, (c) phi vs
  substitution frequency, frequencies on log(1 + count) axes; Pearson r (raw counts, and on the
  logs) in the titles. `analysis` is an interpret.importance.ImportanceAnalysis."""
  if len(analysis.phi) == 0:
    raise ValueError("figure4: the analysis has no words")
  log_wf, log_sf = np.log1p(analysis.word_freq), np.log1p(analysis.sub_freq)
  raw, logs = analysis.summary["pearson"], analysis.summary["pearson_log"]
  panels = [
    (
      "(a)",
      log_wf,
      log_sf,
      "log(1 + word frequency)",
      "log(1 + substitution frequency)",
      "sub_freq_vs_word_freq",
    ),
    (
      "(b)",
      log_wf,
      analysis.phi,
      "log(1 + word frequency)",
      "global importance φ",
      "phi_vs_word_freq",
    ),
    (
      "(c)",
      log_sf,
      analysis.phi,
      "log(1 + substitution frequency)",
      "global importance φ",
      "phi_vs_sub_freq",
    ),
  ]
  fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
  for ax, (tag, x, y, xlabel, ylabel, key) in zip(axes, panels):
    ax.scatter(x, y, s=5, alpha=0.35, linewidths=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{tag} Pearson r = {_r(raw[key])} (logs: {_r(logs[key])})", fontsize=10)
  fig.suptitle(f"Global word importance and frequencies ({len(analysis.phi)} training words)")
  return _save(fig, path)


def figure5(
  l1_by_label: Mapping[str, Sequence[float]], path, *, num_synonyms: int = 10
) -> pathlib.Path:
  """Box plot of the L1 differences between the phi of sampled words and of their synonyms, one
  box per label (runs or ablation settings, and a random-word reference)."""
  if not l1_by_label or any(len(v) == 0 for v in l1_by_label.values()):
    raise ValueError("figure5: needs at least one non-empty set of L1 differences per label")
  labels = list(l1_by_label)
  fig, ax = plt.subplots(figsize=(1.6 + 1.7 * len(labels), 4))
  ax.boxplot(
    [np.asarray(l1_by_label[k], np.float64) for k in labels],
    tick_labels=labels,
    showfliers=True,
    flierprops={"markersize": 2, "alpha": 0.4},
  )
  ax.set_ylabel(f"Σ |φ(w) − φ(s)| over {num_synonyms} words s")
  ax.set_title("L1 difference of global importance: sampled words vs their neighbours", fontsize=10)
  return _save(fig, path)


def figure6(
  runs: Mapping[str, dict],
  path,
  method: str = "ig",
  chance: Mapping[str, Mapping[str, float]] | None = None,
) -> pathlib.Path:
  """Top-k intersection for k = 1..10 of `method` attributions, one panel per attack and one curve
  per run (label -> results.json dict); `chance` (attack -> {k: value}, consistency.topk_chance of
  the pairs' lengths) adds what random rankings score, dashed."""
  attacks = sorted(
    {a for run in runs.values() for a in run.get("interpretation", {}).get(method, {})}
  )
  if not attacks:
    raise ValueError(f"figure6: no run has {method} interpretation results")
  fig, axes = plt.subplots(1, len(attacks), figsize=(5 * len(attacks), 3.8), squeeze=False)
  for ax, attack in zip(axes[0], attacks):
    for label, run in runs.items():
      scores = (
        run.get("interpretation", {}).get(method, {}).get(attack, {}).get("topk_intersection")
      )
      if scores:
        ks = [k for k in KS if str(k) in scores]
        ax.plot(ks, [scores[str(k)] for k in ks], marker="o", markersize=3, label=label)
    if chance and chance.get(attack):
      ks = [k for k in KS if str(k) in chance[attack]]
      ax.plot(
        ks,
        [chance[attack][str(k)] for k in ks],
        linestyle="--",
        color="#888",
        label="random rankings",
      )
    ax.set_xlabel("k")
    ax.set_ylabel("top-k intersection")
    ax.set_xticks(KS)
    ax.set_title(f"{method.upper()}, {paper.ATTACK_NAMES.get(attack, attack)}")
    ax.grid(alpha=0.3)
    ax.legend()
  return _save(fig, path)


def training_curves(metrics: Sequence[dict], path) -> pathlib.Path:
  """Train loss and dev accuracy of every epoch on one axis across the stages (metrics.jsonl lines
  in order; a stage starts where the ones before it ended), stage boundaries dotted."""
  offsets, last, points = {}, {}, []
  for m in metrics:
    stage = m.get("stage", "")
    if stage not in offsets:
      offsets[stage] = sum(last.values())
    last[stage] = int(m.get("step", 0))
    points.append((offsets[stage] + int(m.get("step", 0)), m))
  if not points:
    raise ValueError("training_curves: no metrics lines")
  fig, (loss_ax, dev_ax) = plt.subplots(1, 2, figsize=(11, 3.6))
  for ax, key, name in (
    (loss_ax, "train_loss", "train loss"),
    (dev_ax, "dev_accuracy", "dev accuracy (%)"),
  ):
    for stage in offsets:
      xs = [x for x, m in points if m.get("stage") == stage and key in m]
      ys = [m[key] for x, m in points if m.get("stage") == stage and key in m]
      ax.plot(xs, ys, marker="o", markersize=3, label=stage)
    for start in offsets.values():
      if start:
        ax.axvline(start, color="#bbb", linestyle=":")
    ax.set_xlabel("step (all stages)")
    ax.set_ylabel(name)
    ax.grid(alpha=0.3)
  dev_ax.legend(fontsize=8)
  return _save(fig, path)


def write_run_plots(
  out_dir,
  *,
  analysis=None,
  runs: Mapping[str, dict] | None = None,
  methods: Sequence[str] = ("ig", "lime"),
  metrics: Sequence[dict] = (),
  chance: Mapping[str, Mapping[str, float]] | None = None,
) -> list[pathlib.Path]:
  """The plots there are data for, into out_dir (DIR/report): training_curves.png from metrics.jsonl
  lines, figure4.png and figure5.png from an importance analysis (FLAT runs),
  figure6_<method>.png from results.json dicts (label -> run), with the chance line if given."""
  out_dir = pathlib.Path(out_dir)
  paths = [training_curves(metrics, out_dir / "training_curves.png")] if metrics else []
  if analysis is not None:
    paths.append(figure4(analysis, out_dir / "figure4.png"))
    if len(analysis.synonym_l1):
      k = analysis.summary["synonym_l1"]["num_synonyms"]
      paths.append(
        figure5(
          {"nearest synonyms": analysis.synonym_l1, "random words": analysis.random_l1},
          out_dir / "figure5.png",
          num_synonyms=k,
        )
      )
  for method in methods:
    if runs and any(run.get("interpretation", {}).get(method) for run in runs.values()):
      paths.append(figure6(runs, out_dir / f"figure6_{method}.png", method, chance))
    if runs and any(
      run.get("faithfulness", {}).get(method, {}).get("num_texts") for run in runs.values()
    ):
      paths.append(faithfulness_curves(runs, out_dir / f"faithfulness_{method}.png", method))
  recipes = sorted(
    {
      r
      for run in (runs or {}).values()
      for r, q in run.get("attack_quality", {}).items()
      if q.get("num_examples")
    }
  )
  for recipe in recipes:
    paths.append(quality_histograms(runs, out_dir / f"quality_{recipe}.png", recipe))
  return paths


QUALITY_PANELS = (
  ("words_changed", "words changed"),
  ("similarity", "sentence-encoder cosine"),
  ("synonym_share", "share of WordNet synonyms"),
  ("pos_agreement", "share keeping POS"),
)


def quality_histograms(runs: Mapping[str, dict], path, recipe: str) -> pathlib.Path:
  """The distribution of each quality figure of `recipe`'s adversarial examples, one bar series
  per run (share of its examples per bin)."""
  fig, axes = plt.subplots(1, len(QUALITY_PANELS), figsize=(14, 3.2))
  labelled = [
    (label, run["attack_quality"][recipe])
    for label, run in runs.items()
    if run.get("attack_quality", {}).get(recipe, {}).get("num_examples")
  ]
  width = 0.8 / max(1, len(labelled))
  for ax, (metric, title) in zip(axes, QUALITY_PANELS):
    for n, (label, q) in enumerate(labelled):
      hist = q.get(metric, {}).get("histogram")
      if not hist:
        continue
      counts = np.asarray(hist["counts"], np.float64)
      edges = hist["edges"]
      names = [
        f"{a:g}-{b:g}"
        if metric != "words_changed"
        else f"{a:g}"
        if b - a == 1
        else f"{a:g}+"
        if b >= 1000
        else f"{a:g}-{b - 1:g}"
        for a, b in zip(edges[:-1], edges[1:])
      ]
      ax.bar(
        np.arange(len(counts)) + n * width,
        counts / max(1.0, counts.sum()),
        width,
        label=f"{label} (mean {q[metric]['mean']:.2f})",
      )
      ax.set_xticks(np.arange(len(counts)) + 0.4 - width / 2, names, rotation=60, fontsize=6)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6)
  fig.suptitle(f"{recipe}: quality of the adversarial examples", fontsize=10)
  return _save(fig, path)


def faithfulness_curves(runs: Mapping[str, dict], path, method: str) -> pathlib.Path:
  """Comprehensiveness and sufficiency against k for each run's `method` ranking (solid) and a
  random ranking of the same texts (dashed): a faithful explanation's comprehensiveness lies above
  the random one, its sufficiency below."""
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
  for label, run in runs.items():
    f = run.get("faithfulness", {}).get(method, {})
    if not f.get("num_texts"):
      continue
    for ax, measure in zip(axes, ("comprehensiveness", "sufficiency")):
      (line,) = ax.plot(
        f["ks"], f[measure], marker="o", label=f"{label} (AOPC {f['aopc_' + measure]:.3f})"
      )
      ax.plot(
        f["ks"],
        f[f"{measure}_random"],
        linestyle="--",
        color=line.get_color(),
        label=f"{label}, random ranking ({f['aopc_' + measure + '_random']:.3f})",
      )
  for ax, measure in zip(
    axes, ("comprehensiveness (higher: faithful)", "sufficiency (lower: faithful)")
  ):
    ax.set_xlabel("k words deleted / kept")
    ax.set_ylabel("drop in predicted-class probability")
    ax.set_title(f"{method.upper()} {measure}")
    ax.legend(fontsize=7)
  return _save(fig, path)
