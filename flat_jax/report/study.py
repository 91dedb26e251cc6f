"""Controlled comparisons of training settings, seed by seed (the fidelity study, REPRODUCTION.md
"What explains the gap").

Runs are named <prefix>_<setting>_s<seed> (studies/fidelity.sh): `sst2_cnn_flat_keep_all_s1111` is
setting `flat_keep_all`, seed 1111. Every adv/flat setting is compared with its base on the same
seed: `base_<rest>` where a run of that name exists (e.g. `flat_loss_on_probs_lr1e-3` with
`base_loss_on_probs_lr1e-3`), else `base`; and with the reference setting (`flat`: our protocol),
to say whether the setting moves FLAT's after-attack accuracy at all.

Standard errors are binomial over the attacked test examples (sqrt(p(1-p)/n) per accuracy); a
difference's is the root of the summed variances (cautious: the runs are attacked on the same
examples, so the true one is smaller). A factor "moves it" when the difference from the reference
exceeds two such standard errors on every seed, with the same sign.
"""

from __future__ import annotations

import math
import pathlib
import re

SEED_SUFFIX = re.compile(r"^(?P<setting>.+)_s(?P<seed>\d+)$")
REFERENCE = "flat"


def _accuracy(run: dict, recipe: str) -> tuple[float, int] | None:
  figures = run.get("after_attack", {}).get(recipe)
  return (figures["accuracy"], figures["num_examples"]) if figures else None


def _variance(acc: float, n: int) -> float:
  p = acc / 100.0
  return 100.0**2 * p * (1.0 - p) / max(n, 1)


def group_runs(runs: list[dict]) -> tuple[str, dict[str, dict[int, dict]]]:
  """{setting: {seed: run}} from the runs' folder names, and their common prefix (e.g. sst2_cnn)."""
  names = {}
  for run in runs:
    match = SEED_SUFFIX.match(pathlib.Path(run["_path"]).parent.name)
    if match:
      names[run["_path"]] = (match["setting"], int(match["seed"]))
  prefix = f"{runs[0]['dataset']}_{runs[0]['model']}_" if runs else ""
  groups: dict[str, dict[int, dict]] = {}
  for run in runs:
    if run["_path"] not in names or run.get("status") != "finished":
      continue
    setting, seed = names[run["_path"]]
    groups.setdefault(setting.removeprefix(prefix), {})[seed] = run
  return prefix.rstrip("_"), groups


def base_of(setting: str, groups: dict) -> str | None:
  """The base run a setting is compared with: base with the longest leading part of the setting's
  own suffix that has runs (flat_trainable_emb_g1 -> base_trainable_emb), else plain base."""
  mode, _, rest = setting.partition("_")
  if mode == "base":
    return None
  parts = rest.split("_") if rest else []
  for n in range(len(parts), -1, -1):
    candidate = "_".join(["base"] + parts[:n])
    if candidate in groups:
      return candidate
  return None


def _difference(a: tuple[float, int], b: tuple[float, int]) -> tuple[float, float]:
  return a[0] - b[0], math.sqrt(_variance(*a) + _variance(*b))


def compare(groups: dict, setting: str, recipe: str = "textfooler") -> dict:
  """Per seed: the setting's after-attack accuracy, minus its base's, and minus the reference's
  (the change in FLAT - base that the setting makes), each with its standard error."""
  base = base_of(setting, groups)
  out = {"base": base, "seeds": {}}
  for seed, run in sorted(groups[setting].items()):
    acc = _accuracy(run, recipe)
    if acc is None:
      continue
    row = {"accuracy": acc[0], "n": acc[1]}
    base_run = groups.get(base, {}).get(seed) if base else None
    if base_run and (base_acc := _accuracy(base_run, recipe)):
      row["minus_base"], row["minus_base_se"] = _difference(acc, base_acc)
    ref_run = groups.get(REFERENCE, {}).get(seed)
    if setting != REFERENCE and setting.startswith("flat") and ref_run and "minus_base" in row:
      ref_acc = _accuracy(ref_run, recipe)
      ref_base = groups.get(base_of(REFERENCE, groups), {}).get(seed)
      if ref_acc and ref_base and base_of(REFERENCE, groups) == base:  # same base: it cancels
        row["vs_reference"], row["vs_reference_se"] = _difference(acc, ref_acc)
      elif ref_acc and ref_base and (ref_base_acc := _accuracy(ref_base, recipe)):
        ref_diff = _difference(ref_acc, ref_base_acc)
        row["vs_reference"] = row["minus_base"] - ref_diff[0]
        row["vs_reference_se"] = math.sqrt(row["minus_base_se"] ** 2 + ref_diff[1] ** 2)
    out["seeds"][seed] = row
  return out


def verdict(comparison: dict) -> str:
  rows = [r for r in comparison["seeds"].values() if "vs_reference" in r]
  if not rows:
    return "-"
  beyond = [abs(r["vs_reference"]) > 2 * r["vs_reference_se"] for r in rows]
  signs = {r["vs_reference"] > 0 for r in rows}
  seeds = f"{len(rows)} seed{'s' if len(rows) > 1 else ''}"
  if all(beyond) and len(signs) == 1:
    return f"**moves it ({'up' if True in signs else 'down'})**, {seeds}"
  if any(beyond):
    return f"not on every seed ({sum(beyond)} of {seeds})"
  return f"no ({seeds})"


def _cell(values: list[str]) -> str:
  return " / ".join(values) if values else "-"


def _interpretation(run: dict, key: str) -> float | None:
  figures = run.get("interpretation", {}).get("ig", {}).get("textfooler", {})
  if key == "top5":
    return figures.get("topk_intersection", {}).get("5")
  return figures.get(key)


def _temperature(run: dict) -> str:
  """The temperature the run's test attacks queried at; "raw" for runs evaluated before
  temperatures existed (T = 1), "mixed" where its attacks used different ones."""
  values = {figures.get("temperature") for figures in run.get("after_attack", {}).values()}
  if values == {None}:
    return "raw"
  return f"{values.pop():.3g}" if len(values) == 1 else "mixed"


def render_study(runs: list[dict]) -> str:
  prefix, groups = group_runs(runs)
  if not groups:
    return "(no finished study runs)\n"
  order = sorted(
    groups, key=lambda s: (s.split("_")[0] != "base", s.split("_")[0] != "adv", s != REFERENCE, s)
  )
  lines = [
    f"Study on {prefix}: after-attack accuracy (AA, %) on the first attacked test examples per "
    "seed (seeds in increasing order, `a / b`), its difference from the setting's base and "
    f"from `{REFERENCE}` (our protocol) on the same seed, ± one standard error of a difference.",
    "",
    "The attacks queried each model at temperature T (softmax(logits / T); "
    "`eval.attack_temperature`, fitted on dev by default; raw: runs evaluated before "
    "temperatures existed, at T = 1).",
    "",
    "| setting | base | SA | T | TextFooler AA | AA - base | AA - `flat` | PWWS AA | PWWS - base "
    "| KT | top-5 | moves FLAT's AA? |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
  ]
  for setting in order:
    seeds = groups[setting]
    tf, pwws = compare(groups, setting), compare(groups, setting, "pwws")
    sa = _cell([f"{seeds[s]['standard_accuracy']:.1f}" for s in sorted(seeds)])
    fmt = lambda rows, key: _cell(
      [f"{r[key]:+.1f} ± {r[key + '_se']:.1f}" for r in rows.values() if key in r]
    )
    kt = _cell(
      [
        f"{v:.2f}"
        for s in sorted(seeds)
        if (v := _interpretation(seeds[s], "kendall_tau")) is not None
      ]
    )
    top5 = _cell(
      [f"{v:.2f}" for s in sorted(seeds) if (v := _interpretation(seeds[s], "top5")) is not None]
    )
    accuracies = lambda rows: _cell([f"{r['accuracy']:.1f}" for r in rows.values()])
    temperature = _cell([_temperature(seeds[s]) for s in sorted(seeds)])
    base = f"`{tf['base']}`" if tf["base"] else "-"
    lines.append(
      f"| `{setting}` | {base} | {sa} | {temperature} | {accuracies(tf['seeds'])} "
      f"| {fmt(tf['seeds'], 'minus_base')} | {fmt(tf['seeds'], 'vs_reference')} "
      f"| {accuracies(pwws['seeds'])} | {fmt(pwws['seeds'], 'minus_base')} | {kt} | {top5} "
      f"| {verdict(tf)} |"
    )
  seeds = sorted({seed for runs_ in groups.values() for seed in runs_})
  lines += [
    "",
    f"Seeds: {', '.join(map(str, seeds))}. Runs: "
    + ", ".join(f"`{s}` ({len(groups[s])})" for s in order)
    + ".",
  ]
  return "\n".join(lines) + "\n"
