"""Adversarial-set generation against a small trained SST-2 CNN: every recipe runs, no network is
touched, worker count does not change the set, and a killed run resumes without loss or repeats."""

import json
import signal
import socket
import subprocess
import sys
import time

import pytest

from flat_jax.attacks.generate import AttackJob, attack_examples, read_records, summarize


@pytest.fixture(scope="module")
def test_split(sst2_splits):
  return sst2_splits.test


def _job(model_dir, recipe, **kw):
  return AttackJob(str(model_dir), recipe, **kw)


def test_textfooler_and_pwws_run_with_network_refused(model_dir, test_split, tmp_path, monkeypatch):
  def refuse(*args, **kwargs):
    raise OSError("network refused by test")

  monkeypatch.setattr(socket.socket, "connect", refuse)
  monkeypatch.setattr(socket, "create_connection", refuse)
  for recipe in ("textfooler", "pwws"):
    records = attack_examples(
      _job(model_dir, recipe),
      test_split.texts,
      test_split.labels,
      tmp_path / f"{recipe}.jsonl",
      indices=range(20),
    )
    summary = summarize(records)
    assert summary["num_examples"] == 20
    assert summary["success_rate"] > 0, (recipe, summary)
    assert summary["accuracy"] < summary["original_accuracy"]
    for r in records:
      if r["status"] == "successful":
        assert r["replaced"] and r["perturbed_output"] != r["label"]


@pytest.mark.parametrize("recipe", ["gene", "iga", "pso", "clare", "bae"])
def test_transfer_recipes_run(model_dir, test_split, tmp_path, tiny_mlm, recipe):
  job = _job(model_dir, recipe, masked_lm=tiny_mlm, query_budget=200)
  # Clare (a masked-LM infill at every position) and the genetic search are the slow ones: fewer
  # examples, still several that the model gets right and the attack must search on
  count = 6 if recipe in ("clare", "gene") else 20
  records = attack_examples(
    job, test_split.texts, test_split.labels, tmp_path / "out.jsonl", indices=range(count)
  )
  assert len(records) == count
  assert {r["status"] for r in records} <= {"successful", "failed", "skipped"}
  assert any(r["status"] != "skipped" and r["queries"] > 1 for r in records)


def test_two_workers_give_the_same_set_as_one(model_dir, test_split, tmp_path):
  one = attack_examples(
    _job(model_dir, "pwws"),
    test_split.texts,
    test_split.labels,
    tmp_path / "one.jsonl",
    indices=range(10),
  )
  two = attack_examples(
    _job(model_dir, "pwws"),
    test_split.texts,
    test_split.labels,
    tmp_path / "two.jsonl",
    indices=range(10),
    workers=2,
  )
  assert one == two


def test_killed_generation_resumes_without_repeats(model_dir, test_split, tmp_path):
  out = tmp_path / "resume.jsonl"
  code = (
    "import sys; from flat_jax.attacks.generate import AttackJob, attack_examples;"
    "from flat_jax.config import preset; from flat_jax.data.datasets import load_dataset;"
    "t = load_dataset(preset('sst2','cnn').data).test;"
    f"attack_examples(AttackJob({str(model_dir)!r}, 'textfooler'), t.texts, t.labels, {str(out)!r},"
    " indices=range(25))"
  )
  proc = subprocess.Popen(
    [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
  )
  deadline = time.time() + 300
  while time.time() < deadline and proc.poll() is None and len(read_records(out)) < 5:
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert proc.returncode == -signal.SIGKILL, "finished before it could be killed"
  partial = read_records(out)
  assert 5 <= len(partial) < 25
  with open(out, "a") as f:
    f.write('{"index": 999, "cut sho')  # a line cut short by the kill
  resumed = attack_examples(
    _job(model_dir, "textfooler"), test_split.texts, test_split.labels, out, indices=range(25)
  )
  lines = [json.loads(l) for l in out.read_text().splitlines()]
  assert sorted(l["index"] for l in lines) == list(range(25))  # none lost, none repeated
  assert [r["index"] for r in resumed] == list(range(25))
  for i, r in partial.items():
    assert resumed[i] == r


def test_progress_lines_in_the_log_off_a_terminal(
  model_dir, test_split, tmp_path, monkeypatch, caplog
):
  """A log file gets done/total, success rate, rate and time left while an attack runs."""
  from flat_jax.attacks import generate

  monkeypatch.setattr(generate, "PROGRESS_EVERY_S", 0.0)
  caplog.set_level("INFO")
  attack_examples(
    _job(model_dir, "pwws"),
    test_split.texts,
    test_split.labels,
    tmp_path / "p.jsonl",
    indices=range(4),
    desc="pwws on test",
  )
  lines = [
    r.getMessage()
    for r in caplog.records
    if r.getMessage().startswith("pwws on test: ") and "/4" in r.getMessage()
  ]
  assert [l.split(":")[1].split(",")[0].strip() for l in lines] == ["1/4", "2/4", "3/4", "4/4"]
  assert all("success rate" in l and "ex/s" in l and "s left" in l for l in lines)


def _processes_with(marker: str) -> list[int]:
  pids = []
  for entry in __import__("pathlib").Path("/proc").iterdir():
    if entry.name.isdigit():
      try:
        if marker.encode() in (entry / "environ").read_bytes():
          pids.append(int(entry.name))
      except OSError:
        continue
  return pids


def test_workers_leave_when_their_run_is_killed(model_dir, tmp_path):
  """SIGKILL runs no clean-up: the attack workers must notice on their own that the run is gone."""
  import os
  import uuid

  marker = f"FLAT_JAX_TEST_MARKER={uuid.uuid4().hex}"
  out = tmp_path / "out.jsonl"
  code = (
    "from flat_jax.attacks.generate import AttackJob, attack_examples;"
    "from flat_jax.config import preset; from flat_jax.data.datasets import load_dataset;"
    "t = load_dataset(preset('sst2','cnn').data).test;"
    f"attack_examples(AttackJob({str(model_dir)!r}, 'textfooler'), t.texts, t.labels, {str(out)!r},"
    " indices=range(200), workers=2)"
  )
  env = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
  proc = subprocess.Popen(
    [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
  )
  deadline = time.time() + 300
  while time.time() < deadline and proc.poll() is None and len(read_records(out)) < 3:
    time.sleep(0.05)
  workers = [p for p in _processes_with(marker) if p != proc.pid]
  assert len(workers) >= 2
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  deadline = time.time() + 30
  while time.time() < deadline and _processes_with(marker):
    time.sleep(0.2)
  assert not _processes_with(marker), "attack workers outlived their killed run"
