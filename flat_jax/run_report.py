"""A run's report: DIR/report/ (tables.md, the plots, index.html) from what its workdir holds."""

from __future__ import annotations

import contextlib
import json
import logging
import pathlib

from flat_jax.attacks.generate import records_by_index
from flat_jax.data.text import clean_text, tokenize
from flat_jax.interpret import pairs as interpret_pairs
from flat_jax.interpret.consistency import topk_chance
from flat_jax.report.tables import load_runs, render
from flat_jax.run_state import RunError, read_results, write_results


def write_report(workdir) -> dict:
  """DIR/report/: tables.md (the paper's tables, the paper's figures beside ours), the plots there
  are data for (PNG) and index.html (tables, plots, IG-coloured original/adversarial pairs). For a
  FLAT run the global importance analysis (Table 9, Figure 5) also goes into results.json."""
  from flat_jax.interpret import importance as importance_lib
  from flat_jax.report import html, plots
  from flat_jax.training.artifacts import load_trained

  workdir = pathlib.Path(workdir)
  results = read_results(workdir)
  if not results:
    raise RunError(f"{workdir}: no results.json to report on; run the training first")
  report_dir = workdir / "report"
  report_dir.mkdir(exist_ok=True)
  text = render(load_runs([workdir]))
  (report_dir / "tables.md").write_text(text, encoding="utf-8")
  logging.info("report: %s\n%s", report_dir / "tables.md", text)
  analysis = None
  if (workdir / "importance.npy").exists() and results.get("model_stage"):
    analysis = importance_lib.analyze_run(workdir)
    results["importance"] = analysis.summary
    write_results(workdir, results)
  metrics = []
  if (workdir / "metrics.jsonl").exists():
    for line in (workdir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
      with contextlib.suppress(ValueError):
        metrics.append(json.loads(line))
  chance = {}  # what random rankings of the pairs' texts score in Figure 6
  max_length = json.loads((workdir / "config.json").read_text())["data"]["max_length"]
  for file in sorted((workdir / "attacks").glob("test_*.jsonl")):
    pairs = interpret_pairs.counterpart_records(records_by_index(file))
    chance[file.stem.removeprefix("test_")] = topk_chance(
      [min(len(tokenize(clean_text(r["original"]))), max_length) for r in pairs]
    )
  images = plots.write_run_plots(
    report_dir,
    analysis=analysis,
    metrics=metrics,
    chance=chance,
    runs={plots.run_label(results): results},
  )
  attribute = None
  if results.get("model_stage"):
    trained = load_trained(workdir, results["model_stage"])
    attribute = interpret_pairs.word_attributor_ig(trained, steps=trained.config.eval.ig_steps)
  page = html.write_page(
    workdir,
    attribute=attribute,
    images=images,
    analysis=analysis,
    importance=analysis.summary if analysis else None,
  )
  logging.info("report page: %s", page)
  return results
