import numpy as np
import pytest

from flat_jax.data.vocab import PAD_ID, UNK_ID, Vocab


def test_threshold_and_special_tokens():
  vocab = Vocab.build(["a a a b b c", "a b d"], min_freq=2)
  assert vocab.words[:2] == ["<pad>", "<unk>"]
  assert vocab.words[2:] == ["a", "b"]  # most frequent first; c, d under the threshold
  assert vocab.encode("a c d", 10) == [vocab.index["a"], UNK_ID, UNK_ID]


def test_padding_and_truncation():
  vocab = Vocab.build(["x y z"], min_freq=1)
  ids, lengths = vocab.encode_batch(["x y z x y", "z"], max_length=3)
  assert ids.shape == (2, 3)
  assert list(lengths) == [3, 1]
  assert list(ids[1]) == [vocab.index["z"], PAD_ID, PAD_ID]
  assert vocab.decode(ids[0]) == ["x", "y", "z"]


def test_ties_are_deterministic(tmp_path):
  a = Vocab.build(["b a c", "c a b"])
  b = Vocab.build(["c a b", "b a c"])
  assert a.words == b.words == ["<pad>", "<unk>", "a", "b", "c"]
  a.save(tmp_path / "v.json")
  assert Vocab.load(tmp_path / "v.json").words == a.words
  assert np.all(np.asarray(a.encode_batch(["a"], 2)[0]) == [[2, 0]])


def test_extended_keeps_ids_and_prefix_restores_the_old_vocabulary():
  vocab = Vocab.build(["b a a"])
  grown = vocab.extended(["c", "a", "d", "c"])
  assert grown.words == vocab.words + ["c", "d"]
  assert all(grown.index[w] == i for i, w in enumerate(vocab.words))
  assert grown.prefix(len(vocab)).words == vocab.words
  with pytest.raises(ValueError):
    grown.prefix(len(grown) + 1)
