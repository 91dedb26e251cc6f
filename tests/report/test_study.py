"""The settings-by-seed table of the fidelity study on hand-built results where the answer is known."""

import json
import math

from flat_jax.report.study import compare, group_runs, render_study, verdict
from flat_jax.report.tables import load_runs


def _run(root, name, mode, tf, pwws=None, n=500, status="finished", temperature=None):
  folder = root / name
  folder.mkdir()
  after = {
    "textfooler": {
      "accuracy": tf,
      "num_examples": n,
      **({"temperature": temperature} if temperature else {}),
    }
  }
  if pwws is not None:
    after["pwws"] = {"accuracy": pwws, "num_examples": n}
  folder.joinpath("results.json").write_text(
    json.dumps(
      {
        "dataset": "sst2",
        "model": "cnn",
        "mode": mode,
        "status": status,
        "standard_accuracy": 75.0,
        "after_attack": after,
        "interpretation": {
          "ig": {"textfooler": {"kendall_tau": 0.4, "topk_intersection": {"5": 0.6}}}
        },
      }
    )
  )
  return folder


def test_each_setting_against_its_base_and_our_protocol(tmp_path):
  paths = [
    _run(tmp_path, "sst2_cnn_base_s1", "base", 10.0, 6.0),
    _run(tmp_path, "sst2_cnn_base_s2", "base", 12.0, 7.0),
    _run(tmp_path, "sst2_cnn_flat_s1", "flat", 12.0),
    _run(tmp_path, "sst2_cnn_flat_s2", "flat", 12.0),
    # far above our FLAT on both seeds: it moves FLAT's after-attack accuracy
    _run(tmp_path, "sst2_cnn_flat_big_s1", "flat", 30.0, temperature=81.7),
    _run(tmp_path, "sst2_cnn_flat_big_s2", "flat", 28.0, temperature=64.25),
    # within noise of our FLAT
    _run(tmp_path, "sst2_cnn_flat_same_s1", "flat", 13.0),
    _run(tmp_path, "sst2_cnn_flat_same_s2", "flat", 11.0),
    # above on one seed only
    _run(tmp_path, "sst2_cnn_flat_once_s1", "flat", 30.0),
    _run(tmp_path, "sst2_cnn_flat_once_s2", "flat", 12.5),
    # a setting with its own base: the change in (FLAT - base) is what counts
    _run(tmp_path, "sst2_cnn_base_lop_s1", "base", 40.0),
    _run(tmp_path, "sst2_cnn_flat_lop_s1", "flat", 42.0),
    _run(tmp_path, "sst2_cnn_flat_unfinished_s1", "flat", 99.0, status="running"),
  ]
  runs = load_runs(paths)
  prefix, groups = group_runs(runs)
  assert prefix == "sst2_cnn" and "flat_unfinished" not in groups
  big = compare(groups, "flat_big")
  assert big["base"] == "base"
  row = big["seeds"][1]
  assert row["minus_base"] == 20.0
  assert math.isclose(row["minus_base_se"], math.sqrt(0.3 * 0.7 / 500 + 0.1 * 0.9 / 500) * 100)
  assert row["vs_reference"] == 18.0  # the shared base cancels
  assert verdict(big) == "**moves it (up)**, 2 seeds"
  assert verdict(compare(groups, "flat_same")) == "no (2 seeds)"
  assert verdict(compare(groups, "flat_once")).startswith("not on every seed (1 of 2")
  lop = compare(groups, "flat_lop")
  assert lop["base"] == "base_lop" and lop["seeds"][1]["minus_base"] == 2.0
  assert lop["seeds"][1]["vs_reference"] == 2.0 - 2.0  # (42 - 40) - (12 - 10)
  table = render_study(runs)
  assert "| `flat_big` | `base` | 75.0 / 75.0 | 81.7 / 64.2 | 30.0 / 28.0 |" in table
  assert "| `flat` | `base` | 75.0 / 75.0 | raw / raw |" in table  # evaluated before temperatures
  assert "+20.0 ±" in table and "PWWS" in table
  assert table.index("| `base` |") < table.index("| `flat` |") < table.index("| `flat_big` |")


def test_a_variant_setting_is_compared_with_the_base_of_its_longest_matching_suffix():
  from flat_jax.report.study import base_of

  groups = {"base": {}, "base_trainable_emb": {}, "flat_trainable_emb_g1": {}, "adv_uncapped": {}}
  assert base_of("flat_trainable_emb_g1", groups) == "base_trainable_emb"
  assert base_of("adv_uncapped", groups) == "base"
  assert base_of("base_trainable_emb", groups) is None
  assert base_of("flat", {"flat": {}}) is None
