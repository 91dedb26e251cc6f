"""The paper-layout tables put our figures beside the paper's, per dataset, model, mode and attack."""

import json
import subprocess
import sys

from flat_jax.report import tables


def _run(
  dataset, model, mode, test_acc, aa=None, recipe="textfooler", beta=0.1, gamma=0.001, **attacks
):
  run = {
    "dataset": dataset,
    "model": model,
    "mode": mode,
    "standard_accuracy": test_acc,
    "status": "finished",
    "rounds_done": 3 if mode != "base" else 0,
    "attack": {"recipe": recipe},
    "after_attack": {},
  }
  if mode == "flat":
    run["flat"] = {"beta": beta, "gamma": gamma}
  if aa is not None:
    run["after_attack"][recipe] = {"accuracy": aa, "num_examples": 500}
  for name, value in attacks.items():
    run["after_attack"][name] = {"accuracy": value, "num_examples": 500}
  return run


def _row(text, label):
  return next(line for line in text.splitlines() if line.startswith(f"| {label} |"))


def test_table2_cells_are_ours_beside_the_papers_and_repeats_are_averaged():
  runs = [
    _run("trec", "cnn", "base", 87.2),
    _run("trec", "cnn", "flat", 86.0),
    _run("trec", "cnn", "flat", 88.0),
    _run("trec", "cnn", "adv", 85.0, recipe="pwws"),
  ]
  text = tables.table2(runs)
  assert _row(text, "CNN-base") == "| CNN-base | 87.20 (91.20) |"
  assert (
    _row(text, "CNN-FLAT (Textfooler)")
    == "| CNN-FLAT (Textfooler) | 87.00 [2 runs: 86.00-88.00] (89.20) |"
  )
  assert _row(text, "CNN-adv (PWWS)") == "| CNN-adv (PWWS) | 85.00 (90.00) |"
  assert "| Models | TREC |" in text


def test_an_attack_without_pairs_leaves_the_consistency_cells_empty():
  run = _run("trec", "cnn", "flat", 88.0, aa=100.0)
  run["interpretation"] = {"ig": {"textfooler": {"num_pairs": 0}}}
  assert (
    _row(tables.table3([run]), "CNN-FLAT") == "| CNN-FLAT | 100.00 (62.20) | - (0.87) | - (0.96) |"
  )


def test_a_mean_entropy_run_gets_its_own_row_without_the_papers_figure():
  mean = _run("trec", "cnn", "flat", 80.0)
  mean["flat"]["entropy_reduction"] = "mean"
  text = tables.table2([_run("trec", "cnn", "flat", 88.0), mean])
  assert _row(text, "CNN-FLAT (Textfooler)") == "| CNN-FLAT (Textfooler) | 88.00 (89.20) |"
  assert (
    _row(text, "CNN-FLAT (Textfooler) (entropy mean)")
    == "| CNN-FLAT (Textfooler) (entropy mean) | 80.00 |"
  )


def test_table3_uses_the_training_attack_and_attacks_base_with_each():
  runs = [
    _run("trec", "cnn", "base", 87.2, pwws=50.0, textfooler=40.0),
    _run("trec", "cnn", "flat", 88.0, aa=60.0),
  ]
  runs[1]["interpretation"] = {
    "ig": {"textfooler": {"kendall_tau": 0.5, "topk_intersection": {"5": 0.8}}}
  }
  text = tables.table3(runs)
  textfooler, pwws = text.split("**PWWS**")
  assert _row(textfooler, "CNN-base").startswith("| CNN-base | 40.00 (45.20) | - (0.68)")
  assert _row(textfooler, "CNN-FLAT") == "| CNN-FLAT | 60.00 (62.20) | 0.50 (0.87) | 0.80 (0.96) |"
  assert _row(pwws, "CNN-base").startswith("| CNN-base | 50.00 (54.20)")
  assert "CNN-FLAT" not in pwws  # trained with Textfooler: not a PWWS row


def test_table4_and_table5_from_sst2_runs():
  runs = [
    _run("sst2", "lstm", "flat", 80.0, aa=20.0, pwws=25.0, bae=30.0),
    _run("sst2", "lstm", "flat", 79.0, aa=10.0, gamma=0.0),
    _run("sst2", "lstm", "flat", 78.0, aa=5.0, recipe="pwws"),
  ]
  t4 = tables.table4(runs)
  row = _row(t4, "LSTM-FLAT")
  assert row.startswith("| LSTM-FLAT | 25.00 (20.48) | - (33.44)") and row.endswith(
    "30.00 (39.87) |"
  )
  t5 = tables.table5(runs)
  assert _row(t5, "β = 0.1, γ = 0.001") == "| β = 0.1, γ = 0.001 | 80.00 (84.79) | 20.00 (17.76) |"
  assert _row(t5, "β = 0.1, γ = 0") == "| β = 0.1, γ = 0 | 79.00 (83.96) | 10.00 (9.99) |"
  # a non-default beta/gamma gets its own labelled row in the other tables, without paper figures
  assert "| LSTM-FLAT (Textfooler) β=0.1 γ=0 | 79.00 |" in tables.table2(runs)
  # ... but in Table 4 only once it has a transfer attack's figure
  assert "γ=0" not in t4
  # a paper-setting run without any transfer attack: no all-dash row either
  assert "CNN-base" not in tables.table4(runs + [_run("sst2", "cnn", "base", 80.0, aa=9.0)])
  attacked = _run("sst2", "lstm", "flat", 79.0, aa=10.0, gamma=0.0, gene=12.0)
  assert _row(tables.table4(runs + [attacked]), "LSTM-FLAT β=0.1 γ=0").startswith(
    "| LSTM-FLAT β=0.1 γ=0 | - | 12.00 |"
  )


def test_report_command_reads_workdirs_and_fails_clearly(tmp_path):
  (tmp_path / "a").mkdir()
  (tmp_path / "a" / "results.json").write_text(json.dumps(_run("trec", "lstm", "base", 90.0)))
  out = tmp_path / "tables.md"
  done = subprocess.run(
    [sys.executable, "-m", "flat_jax.report", str(tmp_path / "a"), "--out", str(out)],
    capture_output=True,
    text=True,
  )
  assert done.returncode == 0, done.stderr
  assert "| LSTM-base | 90.00 (90.80) |" in out.read_text()
  missing = subprocess.run(
    [sys.executable, "-m", "flat_jax.report", str(tmp_path / "none")],
    capture_output=True,
    text=True,
  )
  assert missing.returncode == 2 and "no results.json" in missing.stderr


def test_report_into_replaces_only_the_marked_block(tmp_path):
  (tmp_path / "a").mkdir()
  (tmp_path / "a" / "results.json").write_text(json.dumps(_run("trec", "lstm", "base", 90.0)))
  doc = tmp_path / "REPRODUCTION.md"
  doc.write_text(
    "# prose before\n<!-- tables:begin -->\nstale table\n<!-- tables:end -->\nprose after\n"
  )
  cmd = [sys.executable, "-m", "flat_jax.report", str(tmp_path / "a"), "--into", str(doc)]
  for _ in range(2):  # idempotent: the second run finds its own block
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
  text = doc.read_text()
  assert text.startswith("# prose before\n<!-- tables:begin -->\n") and text.endswith(
    "<!-- tables:end -->\nprose after\n"
  )
  assert "stale table" not in text and text.count("| LSTM-base | 90.00 (90.80) |") == 1
  doc.write_text("no markers\n")
  done = subprocess.run(cmd, capture_output=True, text=True)
  assert (
    done.returncode == 2 and "tables:begin" in done.stderr and doc.read_text() == "no markers\n"
  )


def test_pgd_and_freelb_rows_have_no_paper_figure_and_appear_under_both_attacks():
  """Embedding-space defences train without an attack (no rounds): like base, Table 3 shows them
  under each attack; with rounds they are trained with the attack and shown under it only; away
  from TextDefender's settings the row says which."""
  pgd = _run("sst2", "cnn", "pgd", 80.0, textfooler=20.0, pwws=10.0)
  pgd.update(
    rounds=[],
    embedding_adversary={"steps": 5, "step_size": 0.03, "init_magnitude": 0.05, "max_norm": 0.0},
  )
  freelb = _run("sst2", "cnn", "freelb", 81.0, textfooler=21.0)
  freelb.update(
    rounds=[],
    embedding_adversary={"steps": 3, "step_size": 0.1, "init_magnitude": 0.05, "max_norm": 1.0},
  )
  with_rounds = _run("sst2", "cnn", "pgd", 79.0, aa=30.0, recipe="pwws")
  with_rounds["rounds"] = [{"round": 1}]
  base = _run("sst2", "cnn", "base", 82.0, textfooler=12.0, pwws=6.0)
  text2 = tables.table2([base, pgd, freelb, with_rounds])
  assert _row(text2, "CNN-PGD") == "| CNN-PGD | 80.00 |"
  assert _row(text2, "CNN-PGD (PWWS)") == "| CNN-PGD (PWWS) | 79.00 |"
  assert _row(text2, "CNN-FreeLB K=3 step=0.1 init=0.05 max-norm=1") == (
    "| CNN-FreeLB K=3 step=0.1 init=0.05 max-norm=1 | 81.00 |"
  )
  labels = [line.split(" |")[0][2:] for line in text2.splitlines()[4:]]
  assert labels == [
    "CNN-base",
    "CNN-PGD",
    "CNN-PGD (PWWS)",
    "CNN-FreeLB K=3 step=0.1 init=0.05 max-norm=1",
  ]
  text3 = tables.table3([base, pgd, freelb, with_rounds])
  textfooler, pwws = text3.split("**PWWS**")
  assert _row(textfooler, "CNN-PGD").startswith("| CNN-PGD | 20.00 |")
  assert _row(pwws, "CNN-PGD").startswith("| CNN-PGD | 10.00 |")
  assert _row(pwws, "CNN-PGD (PWWS)").startswith("| CNN-PGD (PWWS) | 30.00 |")
  assert "CNN-PGD (PWWS)" not in textfooler  # trained with PWWS: not a Textfooler row


def test_quality_and_faithfulness_tables_show_each_run_and_recipe():
  run = _run("sst2", "cnn", "flat", 80.0, aa=20.0)
  run["attack_quality"] = {
    "textfooler": {
      "num_examples": 300,
      "words_changed": {"n": 300, "mean": 2.5},
      "perturbed_fraction": {"n": 300, "mean": 0.16, "percentiles": {"10": 0.05, "90": 0.3}},
      "similarity": {"n": 300, "mean": 0.86, "percentiles": {"10": 0.7, "90": 0.98}},
      "synonym_share": {"n": 300, "mean": 0.65},
      "pos_agreement": {"n": 290, "mean": 0.9},
    }
  }
  run["faithfulness"] = {
    "ig": {
      "num_texts": 200,
      "aopc_comprehensiveness": 0.41,
      "aopc_comprehensiveness_random": 0.09,
      "aopc_sufficiency": -0.1,
      "aopc_sufficiency_random": 0.17,
    }
  }
  assert _row(tables.quality_table([run]), "SST2 CNN-FLAT (Textfooler)") == (
    "| SST2 CNN-FLAT (Textfooler) | Textfooler | 300 | 2.50 | 0.16 [0.05-0.30] "
    "| 0.86 [0.70-0.98] | 0.65 | 0.90 |"
  )
  assert _row(tables.faithfulness_table([run]), "SST2 CNN-FLAT (Textfooler)") == (
    "| SST2 CNN-FLAT (Textfooler) | IG | 200 | 0.410 (0.090) | -0.100 (0.170) |"
  )
  assert tables.quality_table([_run("sst2", "cnn", "base", 80.0)]) == ""
  rendered = tables.render([run])
  assert "Quality of the adversarial examples" in rendered and "Faithfulness: AOPC" in rendered
