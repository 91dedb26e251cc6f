"""The lockstep search (attack.search=batched) gives TextAttack's own records on real SST-2
examples against the small SST-2 CNN: TextFooler and PWWS, with and without a query budget and
under the TextDefender budget; its shortcut for plain word swaps is TextAttack's own splice; a
killed batched run resumes."""

import json
import random
import signal
import subprocess
import sys
import time

import pytest

from flat_jax.attacks import generate, lockstep_search, resources
from flat_jax.attacks.generate import AttackJob, attack_examples, read_records


@pytest.fixture(scope="module")
def test_split(sst2_splits):
  return sst2_splits.test


_reference = {}  # (recipe, count, settings) -> TextAttack's records, shared by this module's tests


def _attack_both_ways(model_dir, split, recipe, count, **settings):
  """TextAttack's records and the lockstep search's (5 examples in flight, joining as others
  finish) of the first `count` examples, from one attacker (one model bridge, one recipe)."""
  attacker = generate._Attacker(AttackJob(str(model_dir), recipe, lockstep_examples=5, **settings))
  assert attacker.lockstep is not None
  tasks = [(i, split.texts[i], int(split.labels[i])) for i in range(count)]
  reference = [attacker(*task) for task in tasks]
  batched = sorted(attacker.attack_all(tasks), key=lambda r: r["index"])
  _reference[(recipe, count, tuple(sorted(settings.items())))] = reference
  return reference, batched


@pytest.mark.parametrize(
  "recipe, count, settings",
  [
    ("textfooler", 10, {}),
    ("pwws", 16, {}),
    # budgets that run out in the ranking of long texts and in the middle of the search of others
    ("textfooler", 10, {"query_budget": 25}),
    ("pwws", 16, {"query_budget": 40}),
    # other constraints (30% of the words, the sentence encoder twice), 50 queries
    ("textfooler", 6, {"budget": "textdefender"}),
  ],
)
def test_batched_records_are_textattacks(model_dir, test_split, recipe, count, settings):
  reference, batched = _attack_both_ways(model_dir, test_split, recipe, count, **settings)
  assert batched == reference
  assert any(r["status"] != "skipped" and r["queries"] > 1 for r in reference)
  budget = settings.get("query_budget") or (50 if settings.get("budget") else 0)
  if budget:  # the budget did cut searches short
    assert any(r["queries"] == budget for r in reference)
  else:
    assert any(r["status"] == "successful" for r in reference)


def test_plain_swaps_are_textattacks_own(sst2_splits):
  """A plain replacement (ASCII letters and digits) spliced into the text gives the text, the
  words and the windows TextAttack's AttackedText builds, on SST-2 texts with their punctuation and
  contractions, and the attack attributes the goal function's cache counts."""
  resources.prepare_textattack_environment()
  from textattack.shared import AttackedText

  rng = random.Random(0)
  texts = sst2_splits.train.texts[:400]
  plain_words = sorted(
    {w for t in texts for w in t.split() if lockstep_search._plain_word(w)} | {"x", "Ab3"}
  )
  checked = 0
  for text in texts:
    current = AttackedText(text)
    spans = lockstep_search._splice_spans(current)
    assert spans is not None, text
    for index in rng.sample(range(len(current.words)), min(4, len(current.words))):
      word = rng.choice(plain_words)
      if word == current.words[index]:
        continue
      candidate = lockstep_search._Candidate(
        current, index, word, True, text[: spans[index][0]] + word + text[spans[index][1] :]
      )
      built = current.replace_word_at_index(index, word)
      built.attack_attrs["last_transformation"] = None
      assert candidate.text == built.text
      assert candidate.swapped_words().words == built.words
      for window in (5, 15):  # the sentence encoder's window around the swap
        assert candidate.swapped_words().text_window_around_index(
          index, window
        ) == built.text_window_around_index(index, window)
      assert built.attack_attrs["newly_modified_indices"] == {index}
      assert len(built.attack_attrs) == lockstep_search.SWAP_ATTRIBUTES
      checked += 1
  assert checked > 1000
  # what the shortcut leaves to TextAttack
  assert not lockstep_search._plain_word("self-made") and not lockstep_search._plain_word("café")
  assert lockstep_search._splice_spans(AttackedText("un film 好 .")) is None


def test_a_killed_batched_run_resumes(model_dir, test_split, tmp_path):
  """Records are written as examples finish; examples in flight when the run is killed are
  attacked again, and the whole set is the one TextAttack's search makes."""
  out = tmp_path / "killed.jsonl"
  count = 10
  code = (
    "from flat_jax.attacks.generate import AttackJob, attack_examples;"
    "from flat_jax.config import preset; from flat_jax.data.datasets import load_dataset;"
    "t = load_dataset(preset('sst2','cnn').data).test;"
    f"attack_examples(AttackJob({str(model_dir)!r}, 'textfooler', lockstep_examples=3),"
    f" t.texts, t.labels, {str(out)!r}, indices=range({count}))"
  )
  proc = subprocess.Popen(
    [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
  )
  deadline = time.time() + 300
  while time.time() < deadline and proc.poll() is None and len(read_records(out)) < 3:
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert proc.returncode == -signal.SIGKILL, "finished before it could be killed"
  partial = read_records(out)
  assert 3 <= len(partial) < count
  resumed = attack_examples(
    AttackJob(str(model_dir), "textfooler", lockstep_examples=3),
    test_split.texts,
    test_split.labels,
    out,
    indices=range(count),
  )
  assert [r["index"] for r in resumed] == list(range(count))
  lines = [json.loads(line) for line in out.read_text().splitlines()]
  assert sorted(line["index"] for line in lines) == list(range(count))  # none lost, none repeated
  for i, r in partial.items():
    assert resumed[i] == r
  reference = _reference.get(("textfooler", count, ()))
  if reference is None:
    reference, _ = _attack_both_ways(model_dir, test_split, "textfooler", count)
  assert resumed == reference


def test_recipes_it_cannot_run_take_textattacks_search(model_dir):
  resources.prepare_textattack_environment()
  from flat_jax.attacks.bridge import PredictionBridge, textattack_wrapper
  from flat_jax.attacks.recipes import build_attack
  from flat_jax.training.artifacts import load_trained

  wrapper = textattack_wrapper(PredictionBridge.from_trained(load_trained(model_dir)))
  for recipe in ("textfooler", "pwws"):
    assert lockstep_search.unsupported_reason(build_attack(recipe, wrapper)) is None
  reason = lockstep_search.unsupported_reason(build_attack("pso", wrapper))
  assert "ParticleSwarmOptimization" in reason
  with pytest.raises(ValueError, match="unknown attack search"):
    AttackJob(str(model_dir), "pwws", search="fastest")
