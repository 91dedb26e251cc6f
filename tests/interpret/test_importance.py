"""Global word importance: Table 9's correlations and Figure 5's synonym L1 on hand-made inputs."""

import json

import numpy as np
import pytest

from flat_jax.data.datasets import REGISTRY, load_split_file
from flat_jax.interpret import importance

VOCAB = ["<pad>", "<unk>", "a", "b", "c", "d", "z"]  # z: a substitute added by a round


def _replaced(*originals):
  return {"status": "successful", "replaced": [[i, w, w + "x"] for i, w in enumerate(originals)]}


def test_correlations_on_counts_with_known_answers():
  texts = ["a b c d", "b c d", "c d", "d"]  # word frequency a 1, b 2, c 3, d 4
  records = [_replaced("a", "a", "b"), _replaced("a", "b"), _replaced("c"), _replaced("q")]
  phi = [0.1, 0.2, 0.3, 0.4, 0.9]  # ids 2.. as in importance.npy
  result = importance.analyze(phi, VOCAB, texts, records)
  assert result.words == ["a", "b", "c", "d"]  # z never occurs in training: left out
  np.testing.assert_array_equal(result.word_freq, [1, 2, 3, 4])
  np.testing.assert_array_equal(result.sub_freq, [3, 2, 1, 0])
  pearson = result.summary["pearson"]
  assert pearson["phi_vs_word_freq"] == pytest.approx(1.0)
  assert pearson["sub_freq_vs_word_freq"] == pytest.approx(-1.0)
  assert pearson["phi_vs_sub_freq"] == pytest.approx(-1.0)
  assert 0.9 < result.summary["pearson_log"]["phi_vs_word_freq"] < 1.0  # log1p bends the line
  assert result.summary["num_replacements"] == 7
  assert result.summary["replacements_not_counted"] == 1  # "q" is not a vocabulary word
  assert result.summary["words_replaced"] == 3
  json.dumps(result.summary)  # JSON-ready


def test_a_constant_side_has_no_correlation():
  result = importance.correlations([0.5, 0.5, 0.5], [1, 2, 3], [0, 1, 0])
  assert result["pearson"]["phi_vs_word_freq"] is None
  assert result["pearson"]["sub_freq_vs_word_freq"] == pytest.approx(0.0)


def test_phi_by_id_takes_both_layouts_and_rejects_others():
  full = importance.phi_by_id([9, 9, 0.1, 0.2], 4)
  short = importance.phi_by_id([0.1, 0.2], 4)
  np.testing.assert_array_equal(full[2:], short[2:])
  assert np.isnan(full[:2]).all() and np.isnan(short[:2]).all()
  with pytest.raises(ValueError, match="3 values for a vocabulary of 4"):
    importance.phi_by_id([0.1, 0.2, 0.3], 4)


def _space():
  """Two tight pairs of synonyms, far apart; 'd' is missing from the space."""
  words = ["a", "b", "c", "e", "unused"]
  vectors = np.array([[1, 0.05], [1, -0.05], [0, 1], [0.05, 1], [-1, -1]], np.float32)
  return words, vectors


def test_synonym_l1_uses_nearest_neighbours_in_the_space_among_vocabulary_words():
  vocab = ["<pad>", "<unk>", "a", "b", "c", "d", "e"]
  phi = importance.phi_by_id([0.9, 0.7, 0.1, 0.5, 0.2], len(vocab))
  result = importance.synonym_l1(phi, vocab, *_space(), num_words=10, num_synonyms=1, seed=0)
  assert result["words"] == ["a", "b", "c", "e"]  # d: not in the space
  assert result["synonyms"] == [["b"], ["a"], ["e"], ["c"]]
  np.testing.assert_allclose(result["synonym_l1"], [0.2, 0.2, 0.1, 0.1])
  assert result["cosines"].min() > 0.99
  # random neighbours, never the word itself: |phi(w) - phi(other)| for some other word
  assert np.all(result["random_l1"] > 0)
  again = importance.synonym_l1(phi, vocab, *_space(), num_words=2, num_synonyms=2, seed=3)
  assert (
    again["words"]
    == importance.synonym_l1(phi, vocab, *_space(), num_words=2, num_synonyms=2, seed=3)["words"]
  )
  assert len(again["words"]) == 2 and again["synonym_l1"].shape == (2,)


def test_synonym_l1_rejects_too_few_words():
  vocab = ["<pad>", "<unk>", "a", "b"]
  with pytest.raises(ValueError, match="only 2 vocabulary words are in the synonym space"):
    importance.synonym_l1(importance.phi_by_id([0.1, 0.2], 4), vocab, *_space(), num_synonyms=2)


def test_analyze_with_a_synonym_space_summarises_figure5():
  vocab = ["<pad>", "<unk>", "a", "b", "c", "e"]
  result = importance.analyze(
    [0.9, 0.7, 0.1, 0.2], vocab, ["a b c e", "a"], [], synonym_space=_space(), num_synonyms=1
  )
  figure5 = result.summary["synonym_l1"]
  assert figure5["num_words"] == 4
  assert figure5["synonyms"]["mean"] == pytest.approx(0.15)
  assert figure5["examples"]["a"] == ["b"]
  assert result.summary["pearson"]["phi_vs_sub_freq"] is None  # nothing was replaced


def test_word_frequency_of_real_trec_questions(shared_data):
  split = load_split_file(shared_data / "trec" / "test.jsonl.gz", REGISTRY["trec"].label_names)
  texts = split.texts[:200]
  freq = importance.word_frequency(texts, ["what", "?", "zzzz"])
  assert freq[0] == sum(t.split().count("what") for t in texts) > 50
  assert freq[1] >= 190 and freq[2] == 0


def test_adversarial_records_reads_rounds_in_order_with_the_runs_keep_rule(tmp_path):
  (tmp_path / "config.json").write_text(json.dumps({"attack": {"keep": "successful"}}))
  (tmp_path / "adversarial").mkdir()
  for k in (1, 2, 10):
    rows = [
      {
        "index": k,
        "status": "successful",
        "original": "a",
        "perturbed": "b",
        "replaced": [[0, "a", "b"]],
      },
      {
        "index": -k,
        "status": "failed",
        "original": "a",
        "perturbed": "c",
        "replaced": [[0, "a", "c"]],
      },
    ]
    (tmp_path / "adversarial" / f"round_{k}.jsonl").write_text(
      "\n".join(map(json.dumps, rows)) + "\n"
    )
  assert [r["index"] for r in importance.adversarial_records(tmp_path)] == [1, 2, 10]
  assert len(importance.adversarial_records(tmp_path, keep="perturbed")) == 6
  # a killed attack leaves a truncated last line, which the resumed attack writes again
  (tmp_path / "adversarial" / "round_3.jsonl").write_text(
    '{"index": 3, "status": "successful", "replaced": []}\n{"index": 4, "sta'
  )
  assert [r["index"] for r in importance.adversarial_records(tmp_path)] == [1, 2, 3, 10]
