"""The round's training set: clean rows paired with their kept adversarial twins."""

import numpy as np
import pytest

from flat_jax.attacks import augment
from flat_jax.attacks.pairs import replaced_pairs
from flat_jax.data.vocab import PAD_ID, UNK_ID, Vocab
from flat_jax.data.encoding import EncodedSplit, WordEncoder


def _record(index, original, perturbed, status):
  return {
    "index": index,
    "status": status,
    "original": original,
    "perturbed": perturbed,
    "replaced": [list(p) for p in replaced_pairs(original, perturbed)],
  }


TEXTS = ["a great film", "a dull and slow film", "what is the capital of peru ?"]
RECORDS = [
  _record(0, TEXTS[0], "a terrific film", "successful"),
  _record(1, TEXTS[1], "a boring and slow movie", "failed"),
  _record(2, TEXTS[2], TEXTS[2], "skipped"),
]


def test_keep_rules():
  assert [r["index"] for r in augment.kept_records(RECORDS, "successful")] == [0]
  assert [r["index"] for r in augment.kept_records(RECORDS, "perturbed")] == [0, 1]
  # the authors' rule: the skipped example's text (its original) is kept as its own twin
  assert [r["index"] for r in augment.kept_records(RECORDS, "all")] == [0, 1, 2]
  with pytest.raises(ValueError, match="attack.keep"):
    augment.kept_records(RECORDS, "every")


def test_keep_all_twins_a_skipped_example_with_itself_and_no_replaced_position():
  vocab = Vocab.build(TEXTS + ["terrific movie"])
  ids = vocab.encode_batch(TEXTS, 8)[0]
  split = augment.augmented_split(
    EncodedSplit(ids, np.array([1, 0, 2])),
    augment.kept_records(RECORDS, "all"),
    WordEncoder(vocab, 8),
  )
  np.testing.assert_array_equal(split.extra["has_adv"], [True, True, True])
  np.testing.assert_array_equal(split.extra["adv_ids"][2], ids[2])
  assert not split.extra["replaced"][2].any()


def test_augmented_split_pairs_twins_and_marks_replaced_positions():
  vocab = Vocab.build(TEXTS + ["terrific movie"])
  ids = vocab.encode_batch(TEXTS, 8)[0]
  train = EncodedSplit(ids, np.array([1, 0, 2]))
  encode = WordEncoder(vocab, 8)
  split = augment.augmented_split(train, augment.kept_records(RECORDS, "perturbed"), encode)
  np.testing.assert_array_equal(split.extra["has_adv"], [True, True, False])
  np.testing.assert_array_equal(
    split.extra["adv_ids"][0, :3], encode.inputs(["a terrific film"])["ids"][0, :3]
  )
  np.testing.assert_array_equal(split.extra["adv_ids"][2], ids[2])  # no twin: itself
  replaced = split.extra["replaced"]
  assert replaced[0].tolist() == [False, True] + [False] * 6
  # 'boring' is not in the vocabulary (<unk>) but is still a replaced position; 'movie' is known
  assert split.extra["adv_ids"][1, 1] == UNK_ID
  assert np.flatnonzero(replaced[1]).tolist() == [1, 4]
  assert not replaced[2].any()
  assert not (replaced & (split.extra["adv_ids"] == PAD_ID)).any()


def test_a_twin_with_another_length_gets_no_replaced_positions():
  vocab = Vocab.build(TEXTS)
  train = EncodedSplit(vocab.encode_batch(TEXTS, 8)[0], np.array([1, 0, 2]))
  inserted = [_record(0, TEXTS[0], "a really great film", "successful")]
  split = augment.augmented_split(train, inserted, WordEncoder(vocab, 8))
  assert split.extra["has_adv"][0] and not split.extra["replaced"][0].any()


def test_word_piece_twins_mark_replaced_words_not_pieces():
  from flat_jax.data.pieces import PieceEncoder
  from flat_jax.models.checkpoints_hf import default_bert_dir, load_tokenizer

  pieces = PieceEncoder(load_tokenizer(default_bert_dir()), 12)
  texts = ["a great film", "what is the capital of peru ?"]
  ids, word_ids = pieces.encode_batch(texts)
  train = EncodedSplit(ids, np.array([1, 2]), {"word_ids": word_ids})
  # 'flabbergasting' splits into several pieces, so piece positions shift after it
  records = [
    _record(0, texts[0], "a flabbergasting movie", "successful"),
    _record(1, texts[1], "what is the capital of lima ?", "successful"),
  ]
  split = augment.augmented_split(train, records, pieces)
  adv_ids, adv_word_ids = pieces.encode_batch(["a flabbergasting movie"])
  assert (adv_word_ids[0] == 1).sum() > 1
  np.testing.assert_array_equal(split.extra["adv_ids"][0], adv_ids[0])
  np.testing.assert_array_equal(split.extra["adv_word_ids"][0], adv_word_ids[0])
  np.testing.assert_array_equal(split.extra["word_ids"], word_ids)
  assert np.flatnonzero(split.extra["replaced"][0]).tolist() == [1, 2]  # words, not pieces
  assert np.flatnonzero(split.extra["replaced"][1]).tolist() == [5]


def test_a_replaced_word_truncated_away_has_no_importance_term():
  from flat_jax.data.pieces import PieceEncoder
  from flat_jax.models.checkpoints_hf import default_bert_dir, load_tokenizer

  pieces = PieceEncoder(load_tokenizer(default_bert_dir()), 5)  # [CLS] + 3 pieces + [SEP]
  text = "one two three four five"
  ids, word_ids = pieces.encode_batch([text])
  records = [_record(0, text, "one two three four six", "successful")]
  split = augment.augmented_split(
    EncodedSplit(ids, np.array([0]), {"word_ids": word_ids}), records, pieces
  )
  assert split.extra["has_adv"][0] and not split.extra["replaced"][0].any()


def test_attack_indices_all_or_a_fresh_seeded_sample_each_round():
  assert augment.attack_indices(5, 0, 1111, 1) == [0, 1, 2, 3, 4]
  assert augment.attack_indices(5, 9, 1111, 1) == [0, 1, 2, 3, 4]
  first = augment.attack_indices(1000, 50, 1111, 1)
  assert first == augment.attack_indices(1000, 50, 1111, 1) and len(set(first)) == 50
  assert first != augment.attack_indices(1000, 50, 1111, 2)


def test_substitute_words_in_order_of_first_use():
  assert augment.substitute_words(RECORDS) == ["terrific", "boring", "movie"]
