"""The round's training set: clean rows paired with their kept adversarial twins."""
import numpy as np
import pytest

from flat_jax.attacks import augment
from flat_jax.attacks.pairs import replaced_pairs
from flat_jax.data.text import clean_text
from flat_jax.data.vocab import PAD_ID, UNK_ID, Vocab
from flat_jax.training.loop import EncodedSplit


def _record(index, original, perturbed, status):
  return {"index": index, "status": status, "original": original, "perturbed": perturbed,
          "replaced": [list(p) for p in replaced_pairs(original, perturbed)]}


TEXTS = ["a great film", "a dull and slow film", "what is the capital of peru ?"]
RECORDS = [
    _record(0, TEXTS[0], "a terrific film", "successful"),
    _record(1, TEXTS[1], "a boring and slow movie", "failed"),
    _record(2, TEXTS[2], TEXTS[2], "skipped"),
]


def test_keep_rules():
  assert [r["index"] for r in augment.kept_records(RECORDS, "successful")] == [0]
  assert [r["index"] for r in augment.kept_records(RECORDS, "perturbed")] == [0, 1]
  with pytest.raises(ValueError, match="attack.keep"):
    augment.kept_records(RECORDS, "all")


def test_augmented_split_pairs_twins_and_marks_replaced_positions():
  vocab = Vocab.build(TEXTS + ["terrific movie"])
  ids = vocab.encode_batch(TEXTS, 8)[0]
  train = EncodedSplit(ids, np.array([1, 0, 2]))
  encode = lambda text: vocab.encode(clean_text(text), 8)
  split = augment.augmented_split(train, augment.kept_records(RECORDS, "perturbed"), encode)
  np.testing.assert_array_equal(split.extra["has_adv"], [True, True, False])
  np.testing.assert_array_equal(split.extra["adv_ids"][0, :3], encode("a terrific film"))
  np.testing.assert_array_equal(split.extra["adv_ids"][2], ids[2])     # no twin: itself
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
  split = augment.augmented_split(train, inserted, lambda t: vocab.encode(clean_text(t), 8))
  assert split.extra["has_adv"][0] and not split.extra["replaced"][0].any()


def test_attack_indices_all_or_a_fresh_seeded_sample_each_round():
  assert augment.attack_indices(5, 0, 1111, 1) == [0, 1, 2, 3, 4]
  assert augment.attack_indices(5, 9, 1111, 1) == [0, 1, 2, 3, 4]
  first = augment.attack_indices(1000, 50, 1111, 1)
  assert first == augment.attack_indices(1000, 50, 1111, 1) and len(set(first)) == 50
  assert first != augment.attack_indices(1000, 50, 1111, 2)


def test_substitute_words_in_order_of_first_use():
  assert augment.substitute_words(RECORDS) == ["terrific", "boring", "movie"]
